#include "reduce/nonfinite.hpp"

#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {

template <class T>
bool any_nonfinite(const T* const* x, const ChunkView& plan) {
  int found = 0;
  for_each_chunk(plan, [&](int64_t k, int64_t begin, int64_t end) {
    const T* NNDL_RESTRICT xs = x[k];
    int bad = 0;
    // x − x is 0 for every finite x and NaN for ±Inf and NaN: one compare, no branch.
#pragma omp simd reduction(| : bad)
    for (int64_t i = begin; i < end; ++i) bad |= !(xs[i] - xs[i] == T(0));
    if (bad) {
#pragma omp atomic write
      found = 1;
    }
  });
  return found != 0;
}

template bool any_nonfinite(const float* const*, const ChunkView&);
template bool any_nonfinite(const double* const*, const ChunkView&);

}  // namespace nndl::NNDL_TARGET
