// Softmax cross-entropy with smoothed or soft targets, and the distillation loss, one row per
// sample. Formulas and conventions: python/nndl_fast/loss.py.
//
// Each row is read once from memory for its statistics (an online softmax: a running max and a
// sum of exponentials rescaled when the max grows, block by block, sums in double over fixed
// lanes) and once more, from cache, to write its gradient. A row's results depend on that row
// only, so they are the same bits for any thread count; the lanes fix the order of every sum,
// so they are the same bits on every SIMD target.
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

namespace nndl::loss {

// One row's target weights a_j = w_j·(off + hot·[j = y])   (class index y), or
//                            a_j = w_j·(off + hot·q_j)      (soft target row q);
// w_j = weight[j], or 1 without weights. The row loss is −Σ_j a_j·log softmax(z)_j and its
// gradient with respect to z is S·softmax(z) − a, S = Σ_j a_j; both are multiplied by `grad`
// in the gradient (grad_scale over the mean's denominator).
// Elements per step of the online softmax: the block's max is taken, then the block is read
// again, from L1, for its exponentials.
constexpr int64_t kBlock = 1024;

// Rows of at most kNarrowK logits take the narrow paths (cross-entropy with class-index targets,
// and distillation): kLanes rows at a time, no scratch.
constexpr int64_t kNarrowK = 64;

// Elements (of the logits' type) of scratch per thread for rows of K with a gradient: the row's
// exponentials and one reference per block.
inline int64_t scratch_per_thread(int64_t K) { return K + (K + kBlock - 1) / kBlock; }
// The same for distillation: three rows of exponentials and two references per block.
inline int64_t kd_scratch_per_thread(int64_t K) { return 3 * K + 2 * ((K + kBlock - 1) / kBlock); }

struct CeCoeffs {
  double off;
  double hot;
  double weight_sum;  // W = Σ_j w_j (K without weights)
  double grad;
  int threads;
};

// The distillation loss of one row, α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, y),
// and its gradient with respect to s, α·T·(softmax(s/T) − softmax(t/T)) + (1 − α)·(S·softmax(s) − a),
// times `grad`. a, S as for CeCoeffs (no class weights); no CE term without class indices.
struct KdCoeffs {
  double inv_temperature;
  double kl_loss;  // α·T²
  double kl_grad;  // α·T
  double ce;       // 1 − α
  double off;
  double hot;
  double grad;
  int threads;
};

}  // namespace nndl::loss

NNDL_DECLARE_KERNELS(
    // row_loss[i] ← the loss of row i (0 for an ignored row, cls[i] < 0; NaN for a non-finite
    // row: a NaN or +inf logit, or every logit −inf). dlogits (optional, may be logits) ← the
    // gradient of every finite row (zeros for an ignored row); a non-finite row is not written.
    // logits, dlogits, soft: (N, K); cls: (N,) or null (soft targets); soft: (N, K) or null;
    // weight: (K,) or null. scratch: c.threads · scratch_per_thread(K) elements when dlogits is given.
    template <class T>
    void softmax_cross_entropy_rows(T* dlogits, double* row_loss, T* scratch, const T* logits, const int64_t* cls,
                                    const T* soft, const T* weight, const loss::CeCoeffs& c, int64_t N, int64_t K);

    // row_loss[i] ← the distillation loss of row i (NaN for a non-finite row of either input);
    // dstudent (optional, may be student) ← its gradient, a non-finite row not written.
    // student, teacher, dstudent: (N, K); cls: (N,) class indices, or null (no CE term);
    // scratch: c.threads · kd_scratch_per_thread(K) elements when dstudent is given.
    template <class T>
    void distillation_rows(T* dstudent, double* row_loss, T* scratch, const T* student, const T* teacher,
                           const int64_t* cls, const loss::KdCoeffs& c, int64_t N, int64_t K);)
