// Dropout kernels: forward reads x and writes y and the packed mask once (8 + 1/8 bytes per
// float32 element); the generator runs in registers, one Philox call per 4 elements.
#include "dropout/dropout.hpp"

#include "rng/philox.hpp"
#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using dropout::kBlock;

// Blocks below which a call stays on one thread (16 Ki elements, the ChunkPlan's size).
constexpr int64_t kParallelBlocks = 256;

// The kept bits of block b: bit 16·w + l is element 64·b + 16·w + l (dropout.hpp).
struct BlockGenerator {
  uint32_t key0, key1, off0, off1, threshold;
#if defined(__AVX512F__)
  rng::PhiloxKeySchedule keys;
#endif
  explicit BlockGenerator(const dropout::Stream& s)
      : key0(uint32_t(s.seed)),
        key1(uint32_t(s.seed >> 32)),
        off0(uint32_t(s.offset)),
        off1(uint32_t(s.offset >> 32)),
        threshold(s.threshold)
#if defined(__AVX512F__)
        ,
        keys(key0, key1)
#endif
  {
  }

  inline uint64_t bits(int64_t b) const {
    const uint64_t j = uint64_t(b) * 16;  // a multiple of 16: lo32(j) + l never carries
    const uint32_t j0 = uint32_t(j), j1 = uint32_t(j >> 32);
#if defined(__AVX512F__)
    __m512i c[4] = {_mm512_add_epi32(_mm512_set1_epi32(int(j0)),
                                     _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
                    _mm512_set1_epi32(int(j1)), _mm512_set1_epi32(int(off0)), _mm512_set1_epi32(int(off1))};
    rng::philox4x32_10_x16(c, keys);
    const __m512i t = _mm512_set1_epi32(int(threshold));
    return uint64_t(_mm512_cmple_epu32_mask(c[0], t)) | uint64_t(_mm512_cmple_epu32_mask(c[1], t)) << 16 |
           uint64_t(_mm512_cmple_epu32_mask(c[2], t)) << 32 | uint64_t(_mm512_cmple_epu32_mask(c[3], t)) << 48;
#elif defined(__AVX2__)
    // Unsigned u ≤ t as a signed compare after flipping the sign bits: kept = !(u' > t').
    const __m256i sign = _mm256_set1_epi32(int(0x80000000u));
    const __m256i t = _mm256_xor_si256(_mm256_set1_epi32(int(threshold)), sign);
    uint64_t out = 0;
    for (int h = 0; h < 2; ++h) {
      __m256i c[4] = {
          _mm256_add_epi32(_mm256_set1_epi32(int(j0 + 8u * uint32_t(h))), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
          _mm256_set1_epi32(int(j1)), _mm256_set1_epi32(int(off0)), _mm256_set1_epi32(int(off1))};
      rng::philox4x32_10_x8(c, key0, key1);
      for (int w = 0; w < 4; ++w) {
        const __m256i gt = _mm256_cmpgt_epi32(_mm256_xor_si256(c[w], sign), t);
        const uint64_t kept = ~uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(gt))) & 0xFFu;
        out |= kept << (16 * w + 8 * h);
      }
    }
    return out;
#else
    uint64_t out = 0;
    const uint32_t key[2] = {key0, key1};
    for (uint32_t l = 0; l < 16; ++l) {
      const uint32_t ctr[4] = {j0 + l, j1, off0, off1};
      uint32_t u[4];
      rng::philox4x32_10(u, ctr, key);
      for (int w = 0; w < 4; ++w) out |= uint64_t(u[w] <= threshold) << (16 * w + int(l));
    }
    return out;
#endif
  }
};

// Bit k of byte j ↔ bit 7 − k: LSB-first block bits to numpy.packbits's MSB-first bytes (and back).
inline uint64_t reverse_bits_in_bytes(uint64_t v) {
  v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
  v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
  v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
  return v;
}

inline void store_mask(uint8_t* mask, uint64_t bits, int nbytes) {
  const uint64_t v = reverse_bits_in_bytes(bits);
  for (int k = 0; k < nbytes; ++k) mask[k] = uint8_t(v >> (8 * k));
}

inline uint64_t load_mask(const uint8_t* mask, int nbytes) {
  uint64_t v = 0;
  for (int k = 0; k < nbytes; ++k) v |= uint64_t(mask[k]) << (8 * k);
  return reverse_bits_in_bytes(v);
}

// y[k] = x[k]·(bit k ? s : 0) for the first `count` elements of a block.
template <class T>
inline void apply_partial(T* y, const T* x, uint64_t bits, T s, int64_t count) {
  for (int64_t k = 0; k < count; ++k) y[k] = x[k] * (((bits >> k) & 1u) ? s : T(0));
}

// The same for a whole block of 64.
template <class T>
inline void apply_block(T* y, const T* x, uint64_t bits, T s) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    const __m512 sv = _mm512_set1_ps(s);
    for (int q = 0; q < 4; ++q) {
      const __m512 m = _mm512_maskz_mov_ps(__mmask16(bits >> (16 * q)), sv);
      _mm512_storeu_ps(y + 16 * q, _mm512_mul_ps(_mm512_loadu_ps(x + 16 * q), m));
    }
  } else {
    const __m512d sv = _mm512_set1_pd(s);
    for (int q = 0; q < 8; ++q) {
      const __m512d m = _mm512_maskz_mov_pd(__mmask8(bits >> (8 * q)), sv);
      _mm512_storeu_pd(y + 8 * q, _mm512_mul_pd(_mm512_loadu_pd(x + 8 * q), m));
    }
  }
#elif defined(__AVX2__)
  if constexpr (sizeof(T) == 4) {
    const __m256 sv = _mm256_set1_ps(s);
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (int q = 0; q < 8; ++q) {
      const __m256i byte = _mm256_set1_epi32(int((bits >> (8 * q)) & 0xFFu));
      const __m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(byte, sel), sel);
      const __m256 m = _mm256_and_ps(_mm256_castsi256_ps(on), sv);
      _mm256_storeu_ps(y + 8 * q, _mm256_mul_ps(_mm256_loadu_ps(x + 8 * q), m));
    }
  } else {
    const __m256d sv = _mm256_set1_pd(s);
    const __m256i sel = _mm256_setr_epi64x(1, 2, 4, 8);
    for (int q = 0; q < 16; ++q) {
      const __m256i nib = _mm256_set1_epi64x(int64_t((bits >> (4 * q)) & 0xFu));
      const __m256i on = _mm256_cmpeq_epi64(_mm256_and_si256(nib, sel), sel);
      const __m256d m = _mm256_and_pd(_mm256_castsi256_pd(on), sv);
      _mm256_storeu_pd(y + 4 * q, _mm256_mul_pd(_mm256_loadu_pd(x + 4 * q), m));
    }
  }
#else
  apply_partial(y, x, bits, s, kBlock);
#endif
}

// kApply: write y from x; kMask: write the packed mask. Settled outside the loop.
template <class T, bool kApply, bool kMask>
void forward_impl(T* y, uint8_t* mask, const T* x, int64_t n, const dropout::Stream& s, double scale) {
  const BlockGenerator gen(s);
  const T sv = T(scale);
  const int64_t full = n / kBlock;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (full >= kParallelBlocks)
  for (int64_t b = 0; b < full; ++b) {
    const uint64_t bits = gen.bits(b);
    if constexpr (kMask) store_mask(mask + 8 * b, bits, 8);
    if constexpr (kApply) apply_block(y + kBlock * b, x + kBlock * b, bits, sv);
  }
  const int64_t rest = n - full * kBlock;
  if (rest > 0) {
    const uint64_t bits = gen.bits(full) & ((uint64_t(1) << rest) - 1);  // padding bits 0
    if constexpr (kMask) store_mask(mask + 8 * full, bits, int((rest + 7) / 8));
    if constexpr (kApply) apply_partial(y + kBlock * full, x + kBlock * full, bits, sv, rest);
  }
}

}  // namespace

template <class T>
void dropout_forward(T* y, uint8_t* mask, const T* x, int64_t n, const dropout::Stream& s, double scale) {
  if (mask)
    forward_impl<T, true, true>(y, mask, x, n, s, scale);
  else
    forward_impl<T, true, false>(y, mask, x, n, s, scale);
}

void dropout_mask(uint8_t* mask, int64_t n, const dropout::Stream& s) {
  forward_impl<float, false, true>(nullptr, mask, nullptr, n, s, 1.0);
}

template <class T>
void dropout_apply_mask(T* y, const T* x, const uint8_t* mask, int64_t n, double scale) {
  const T sv = T(scale);
  const int64_t full = n / kBlock;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (full >= kParallelBlocks)
  for (int64_t b = 0; b < full; ++b) apply_block(y + kBlock * b, x + kBlock * b, load_mask(mask + 8 * b, 8), sv);
  const int64_t rest = n - full * kBlock;
  if (rest > 0)
    apply_partial(y + kBlock * full, x + kBlock * full, load_mask(mask + 8 * full, int((rest + 7) / 8)), sv, rest);
}

template <class T>
void mul_rows(T* y, const T* x, const T* mult, int64_t A, int64_t B, int64_t C) {
  const int64_t rows = A * B;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (rows * C >= kParallelBlocks * kBlock)
  for (int64_t r = 0; r < rows; ++r) {
    const T* m = mult + (r / B) * C;
    const T* xr = x + r * C;
    T* yr = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * m[c];
  }
}

template <class T>
void scale_rows(T* y, const T* x, const T* mult, int64_t rows, int64_t len) {
  // Flat chunks of kBlock elements, so that a few long rows and many short ones split alike.
  const int64_t n = rows * len, chunks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (n >= kParallelBlocks * kBlock)
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t i0 = k * kBlock, i1 = i0 + kBlock < n ? i0 + kBlock : n;
    for (int64_t i = i0; i < i1;) {
      const int64_t r = i / len, end = (r + 1) * len < i1 ? (r + 1) * len : i1;
      const T m = mult[r];
#pragma omp simd
      for (int64_t j = i; j < end; ++j) y[j] = x[j] * m;
      i = end;
    }
  }
}

#define NNDL_DROPOUT_INSTANTIATE(T)                                                               \
  template void dropout_forward(T*, uint8_t*, const T*, int64_t, const dropout::Stream&, double); \
  template void dropout_apply_mask(T*, const T*, const uint8_t*, int64_t, double);                \
  template void mul_rows(T*, const T*, const T*, int64_t, int64_t, int64_t);                      \
  template void scale_rows(T*, const T*, const T*, int64_t, int64_t);
NNDL_DROPOUT_INSTANTIATE(float)
NNDL_DROPOUT_INSTANTIATE(double)

}  // namespace nndl::NNDL_TARGET
