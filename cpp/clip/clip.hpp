// Gradient clipping (1.24–1.25) over lists of tensors. Formulas: python/nndl_fast/clip.py.
//
// Global norm: one read-only pass writes one partial per fixed chunk of the ChunkPlan
// (accumulated in double), then the partials are combined in chunk order. Chunks do not
// depend on the thread count, and inside a chunk element i always goes to accumulator
// lane i % kNormLanes, summed in the same order on every SIMD target: the norm is bitwise
// identical for any thread count and any target.
#pragma once

#include <cmath>
#include <cstdint>

#include "parallel.hpp"
#include "simd/dispatch.hpp"

namespace nndl::clip {

enum class NormKind : int { l1 = 0, l2 = 1, linf = 2, lp = 3 };

// Accumulator lanes per chunk (fixed, independent of the vector width).
constexpr int kNormLanes = 16;

// The conventions of clip by norm's coefficient, computed once in double.
//   chapter (1.25, fixed): c = b/‖g‖ if ‖g‖ > b, else 1   (a NaN norm compares false: c = 1)
//   torch:                 c = min(b/(‖g‖ + 1e-6), 1)     (a NaN norm gives c = NaN, as torch)
enum class Convention : int { chapter = 0, torch = 1 };

inline double clip_coefficient(double total_norm, double max_norm, Convention convention) {
  if (convention == Convention::chapter) return total_norm > max_norm ? max_norm / total_norm : 1.0;
  const double c = max_norm / (total_norm + 1e-6);
  return c < 1.0 || c != c ? c : 1.0;  // torch.clamp(c, max=1.0) keeps a NaN
}

}  // namespace nndl::clip

NNDL_DECLARE_KERNELS(
    // partials[c] for chunk c of plan (x[k] has the tensor's elements):
    //   l1: Σ|x|   l2: Σx²   lp: Σ|x|^p   linf: max|x| (NaN if any element is NaN)
    template <class T>  // float, double
    void norm_partials(double* partials, const T* const* x, const ChunkView& plan, clip::NormKind kind, double p);

    // x[k][i] ← coef · x[k][i] (coef rounded once to T)
    template <class T> void scale_inplace(T* const* x, const ChunkView& plan, double coef);

    // x[k][i] ← max(min(x[k][i], hi), lo)   (1.24); a NaN stays NaN
    template <class T> void clip_value_inplace(T* const* x, const ChunkView& plan, double lo, double hi);)

namespace nndl::clip {

// Partials combined in chunk order, then the root: the norm of the whole list. (Compiled
// into the bindings only; kernel files never call the inline functions of this namespace.)
inline double combine_partials(const double* partials, int64_t count, NormKind kind, double p) {
  double s = 0.0;
  if (kind == NormKind::linf) {
    for (int64_t c = 0; c < count; ++c) {
      if (partials[c] != partials[c]) return partials[c];  // NaN
      s = partials[c] > s ? partials[c] : s;
    }
    return s;
  }
  for (int64_t c = 0; c < count; ++c) s += partials[c];
  if (kind == NormKind::l2) return std::sqrt(s);
  if (kind == NormKind::lp) return std::pow(s, 1.0 / p);
  return s;
}

// The norm of each of the plan's num_tensors tensors: its own chunks' partials combined as
// combine_partials combines a whole list's, so norms[k] is bitwise the global norm of x[k]
// alone (chunks never span two tensors). A tensor without elements has norm 0.
inline void tensor_norms(double* norms, int64_t num_tensors, const double* partials, const ChunkView& plan,
                         NormKind kind, double p) {
  int64_t c = 0;
  for (int64_t k = 0; k < num_tensors; ++k) {
    const int64_t first = c;
    while (c < plan.count && plan.chunks[c].tensor == k) ++c;
    norms[k] = combine_partials(partials + first, c - first, kind, p);
  }
}

}  // namespace nndl::clip
