// Random fills: the generator runs in registers, 16 counters per block, and each block's
// words are turned into values by a plain `#pragma omp simd` loop over the project's own
// vector math (simd/vmath.hpp), so no libm call decides a bit.
#include "rng/random.hpp"

#include <algorithm>

#include "norm/stream_store.hpp"
#include "rng/philox.hpp"
#include "simd/kernel.hpp"
#include "simd/vmath.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using rng::Dist;
using rng::Fill;

// Blocks below which a call stays on one thread (16 Ki float32 elements).
constexpr int64_t kParallelBlocks = 256;

constexpr double k2m24 = 1.0 / 16777216.0;          // 2^-24
constexpr double k2m32 = 1.0 / 4294967296.0;        // 2^-32
constexpr double k2m52 = 1.0 / 4503599627370496.0;  // 2^-52
constexpr double k2m53 = 1.0 / 9007199254740992.0;  // 2^-53

// A 32-bit word as a double, exactly: through int32 (a conversion every target has).
inline double word(uint32_t w) { return double(int32_t(w ^ 0x80000000u)) + 2147483648.0; }
// The top 53 (or 52) bits of the word pair (a, b) as an integer-valued double, exactly.
inline double bits53(uint32_t a, uint32_t b) { return double(int32_t(a >> 5)) * 67108864.0 + double(int32_t(b >> 6)); }
inline double bits52(uint32_t a, uint32_t b) { return double(int32_t(a >> 6)) * 67108864.0 + double(int32_t(b >> 6)); }

// z of the truncated normal from u in (0, 1): inverse CDF, clamped to the bounds (AS241's
// rounding could step a hair outside them). Plain values, not the Fill, and blends, not
// selects: either would stop the loop vectorising.
struct Truncation {
  double p_lo, p_range, z_lo, z_hi;
  explicit Truncation(const Fill& f) : p_lo(f.p_lo), p_range(f.p_range), z_lo(f.z_lo), z_hi(f.z_hi) {}
  inline double operator()(double u) const {
    const double z = vndtri(p_lo + u * p_range);
    const double lo = vblend(vmask(z < z_lo), z_lo, z);
    return vblend(vmask(lo > z_hi), z_hi, lo);
  }
};

// y[0 : block_elems<T>()] ← the values of one block, from its words w (rng/random.hpp).
template <class T, Dist D>
inline void block_values(T* NNDL_RESTRICT y, const uint32_t (&w)[4][16], const Fill& f) {
  const double loc = f.loc, scale = f.scale;
  const Truncation truncated(f);
  if constexpr (sizeof(T) == 4) {
    const uint32_t* wf = &w[0][0];  // word w of counter l is wf[16·w + l], element 16·w + l
    if constexpr (D == Dist::uniform) {
#pragma omp simd
      for (int i = 0; i < 64; ++i) y[i] = T(loc + scale * (double(int32_t(wf[i] >> 8)) * k2m24));
    } else if constexpr (D == Dist::truncated_normal) {
#pragma omp simd
      for (int i = 0; i < 64; ++i) y[i] = T(loc + scale * truncated((word(wf[i]) + 0.5) * k2m32));
    } else {
      for (int p = 0; p < 2; ++p) {
#pragma omp simd
        for (int l = 0; l < 16; ++l) {
          const double u1 = 1.0 - word(w[2 * p][l]) * k2m32;  // (0, 1]: ln u1 finite
          const double u2 = word(w[2 * p + 1][l]) * k2m32;
          const double r = std::sqrt(-2.0 * vlog<float>(u1));
          double s, c;
          vsincos2pi<float>(u2, s, c);
          y[32 * p + l] = T(loc + scale * (r * c));
          y[32 * p + 16 + l] = T(loc + scale * (r * s));
        }
      }
    }
  } else {
    if constexpr (D == Dist::uniform) {
      for (int h = 0; h < 2; ++h) {
#pragma omp simd
        for (int l = 0; l < 16; ++l) y[16 * h + l] = loc + scale * (bits53(w[2 * h][l], w[2 * h + 1][l]) * k2m53);
      }
    } else if constexpr (D == Dist::truncated_normal) {
      for (int h = 0; h < 2; ++h) {
#pragma omp simd
        for (int l = 0; l < 16; ++l)
          y[16 * h + l] = loc + scale * truncated((bits52(w[2 * h][l], w[2 * h + 1][l]) + 0.5) * k2m52);
      }
    } else {
#pragma omp simd
      for (int l = 0; l < 16; ++l) {
        const double u1 = 1.0 - bits53(w[0][l], w[1][l]) * k2m53;
        const double u2 = bits53(w[2][l], w[3][l]) * k2m53;
        const double r = std::sqrt(-2.0 * vlog<double>(u1));
        double s, c;
        vsincos2pi<double>(u2, s, c);
        y[l] = loc + scale * (r * c);
        y[16 + l] = loc + scale * (r * s);
      }
    }
  }
}

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
