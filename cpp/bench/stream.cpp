#include "bench/stream.hpp"

#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {

// Static schedule over the whole range, the same split the kernels' chunk plans give.
void stream_copy(float* NNDL_RESTRICT out, const float* NNDL_RESTRICT in, int64_t n) {
#pragma omp parallel for simd num_threads(::nndl::num_threads()) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = in[i];
}

void stream_triad(float* NNDL_RESTRICT out, const float* NNDL_RESTRICT a, const float* NNDL_RESTRICT b, float s,
                  int64_t n) {
#pragma omp parallel for simd num_threads(::nndl::num_threads()) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + s * b[i];
}

void stream_inplace(float* NNDL_RESTRICT x, float s, int64_t n) {
#pragma omp parallel for simd num_threads(::nndl::num_threads()) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = s * x[i] + 1.0f;
}

void stream_fill(float* NNDL_RESTRICT out, float s, int64_t n) {
#pragma omp parallel for simd num_threads(::nndl::num_threads()) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = s;
}

// Float lanes: the adds stay far below the read bandwidth, so this bounds read-only passes.
float stream_sum(const float* NNDL_RESTRICT in, int64_t n) {
  float s = 0.0f;
#pragma omp parallel for simd num_threads(::nndl::num_threads()) schedule(static) reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += in[i];
  return s;
}

}  // namespace nndl::NNDL_TARGET
