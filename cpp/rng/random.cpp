// Random fills: the generator runs in registers, 16 counters per block, and each block's
// words are turned into values by a plain `#pragma omp simd` loop over the project's own
// vector math (simd/vmath.hpp), so no libm call decides a bit.
#include "rng/random.hpp"

#include <algorithm>

#include "norm/stream_store.hpp"
#include "rng/philox.hpp"
#include "rng/random_block.hpp"
#include "simd/kernel.hpp"
#include "simd/vmath.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using rng::Dist;
using rng::Fill;

// Blocks below which a call stays on one thread (16 Ki float32 elements).
constexpr int64_t kParallelBlocks = 256;

// out[k] = x_{i0 + k} for k < len: whole blocks straight into out, the partial blocks at
// either end through a small buffer.
template <class T, Dist D>
inline void fill_range(T* NNDL_RESTRICT out, uint64_t i0, int64_t len, const rng::Philox16& gen, const Fill& f) {
  constexpr int64_t B = rng::block_elems<T>();
  alignas(64) uint32_t w[4][16];
  int64_t k = 0;
  while (k < len) {
    const uint64_t i = i0 + uint64_t(k);
    const uint64_t b = i / uint64_t(B);
    const int64_t first = int64_t(i - b * uint64_t(B));
    const int64_t count = std::min(B - first, len - k);
    gen.words(b * 16, w);
    if (count == B) {
      block_values<T, D>(out + k, w, f);
    } else {
      alignas(64) T tmp[B];
      block_values<T, D>(tmp, w, f);
      for (int64_t q = 0; q < count; ++q) out[k + q] = tmp[first + q];
    }
    k += count;
  }
}

// Elements per parallel chunk: a whole number of blocks and of staging buffers.
constexpr int64_t kChunk = 16384;

// y[k] = x_{f.start + k} for k < n. kStream: outputs beyond the last-level cache go out
// through streaming stores (norm/stream_store.hpp), so the lines are never read first.
template <bool kStream, class T, Dist D>
void fill_impl(T* y, int64_t n, const Fill& f) {
  const rng::Philox16 gen(f.seed, f.offset);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel num_threads(::nndl::num_threads()) if (n >= kParallelBlocks * 64)
  {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t c0 = c * kChunk, len = std::min(kChunk, n - c0);
      write_out<kStream>(y + c0, len, [&](T* buf, int64_t j0, int64_t m) {
        fill_range<T, D>(buf, f.start + uint64_t(c0 + j0), m, gen, f);
      });
    }
    if constexpr (kStream) stream_fence();
  }
}

template <class T, Dist D>
void fill_dist(T* y, int64_t n, const Fill& f) {
  if (stream_output(n * int64_t(sizeof(T))))
    fill_impl<true, T, D>(y, n, f);
  else
    fill_impl<false, T, D>(y, n, f);
}

}  // namespace

template <class T>
void random_fill(T* y, int64_t n, const Fill& f) {
  switch (f.dist) {
    case Dist::uniform:
      return fill_dist<T, Dist::uniform>(y, n, f);
    case Dist::normal:
      return fill_dist<T, Dist::normal>(y, n, f);
    case Dist::truncated_normal:
      return fill_dist<T, Dist::truncated_normal>(y, n, f);
  }
}

template void random_fill(float*, int64_t, const Fill&);
template void random_fill(double*, int64_t, const Fill&);

}  // namespace nndl::NNDL_TARGET
