// Loss drivers: what one call of nndl_fast.loss runs, given checked arrays. Compiled once (not
// per SIMD target): they check the targets' values (class range, probabilities that sum to 1,
// finite weights) before anything is written, derive the coefficients, run the row kernels of
// softmax_cross_entropy.hpp through NNDL_DISPATCH, and reduce the row losses in row order.
#pragma once

#include <cstdint>

#include "loss/softmax_cross_entropy.hpp"

namespace nndl::loss {

enum class Reduction : int { none = 0, mean = 1, sum = 2 };

// Class indices as the caller gave them: int32 or int64.
struct Indices {
  const void* data = nullptr;  // null: none given
  bool wide = false;           // int64 (else int32)
};

struct CeOptions {
  double label_smoothing;
  bool chapter;  // ε/(K − 1) on the other classes (else torch's ε/K on every class)
  Reduction reduction;
  int64_t ignore_index;
  double grad_scale;
  bool skip_nonfinite;
};

struct KdOptions {
  double temperature;
  double alpha;
  double label_smoothing;
  bool chapter;
  Reduction reduction;  // mean: torch's "batchmean", the sum over N
  bool skip_nonfinite;
};

struct Result {
  double loss = 0.0;             // reduced loss (mean or sum); 0 with Reduction::none
  int64_t nonfinite_rows = 0;    // rows with a NaN or +inf logit, or every logit −inf
  int64_t first_nonfinite = -1;  // the first of them
};

// Softmax cross-entropy of logits (N, K) against class indices `target` (N,) or probabilities
// `soft` (N, K), class weights `weight` (K,) or null. dlogits (N, K) or null (may be logits) ←
// the gradient; rows (N,) or null ← the row losses (Reduction::none). Non-finite rows are not
// written; with skip_nonfinite they count 0 in the loss and get a zero gradient row.
// Throws std::invalid_argument (nothing written) for a class out of range, a weight that is not
// finite, or a probability row that is negative, not finite, or does not sum to 1 (soft_tolerance).
template <class T>
Result softmax_cross_entropy(T* dlogits, T* rows, const T* logits, Indices target, const T* soft, const T* weight,
                             const CeOptions& o, int64_t N, int64_t K);

// Distillation loss of student (N, K) against teacher (N, K) and class indices (N,) or none.
// dstudent (may be student), rows: as for softmax_cross_entropy.
template <class T>
Result distillation(T* dstudent, T* rows, const T* student, const T* teacher, Indices target, const KdOptions& o,
                    int64_t N, int64_t K);

// |Σ_j q_j − 1| allowed for a soft-target row of K entries of T: 16·max(K, 1) units of rounding
// of T, the worst case of a sum of K rounded probabilities, with room.
template <class T>
double soft_tolerance(int64_t K);

}  // namespace nndl::loss
