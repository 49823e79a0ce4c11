// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror & Shaw, "Parallel
// random numbers: as easy as 1, 2, 3" (SC 2011), as in the Random123 library: a 128-bit
// counter and a 64-bit key give four 32-bit words, a pure function of (counter, key).
// tests/test_dropout.py checks the Random123 known-answer vectors (kat_vectors).
//
// Included by kernel files, which are compiled once per SIMD target: everything here has
// internal linkage (anonymous namespace), so no target's copy can replace another's at link
// time (see simd/dispatch.hpp). The SIMD forms compute the same function on 8 (AVX2) or 16
// (AVX-512) counters at once, one counter per 32-bit lane.
#pragma once

#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
// GCC 12's _mm512_mul_epu32 / _mm512_mask_shuffle_epi32 pass an _mm512_undefined_epi32()
// operand that -Wmaybe-uninitialized reports wherever they are inlined (a known false
// positive of the intrinsic headers). Silenced for the kernel files that include this header.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace nndl::rng {
namespace {

// Multipliers and Weyl key increments of Philox4x32 (Random123's PHILOX_M4x32_*, PHILOX_W32_*).
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kPhiloxRounds = 10;

// One round:  (lo0, hi0) = M0·c0,  (lo1, hi1) = M1·c2  (32×32 → 64-bit products)
//             c ← (hi1 ^ c1 ^ k0,  lo1,  hi0 ^ c3 ^ k1,  lo0)
// and the key is bumped by (W0, W1) between rounds.
inline void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < kPhiloxRounds; ++r) {
    const uint64_t p0 = uint64_t(kPhiloxM0) * c0;
    const uint64_t p1 = uint64_t(kPhiloxM1) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

#if defined(__AVX512F__)
// lo/hi halves of m·a for 16 lanes: _mm512_mul_epu32 multiplies the even lanes (into 64-bit
// products); the odd lanes are shifted into even position first. Masked shuffles then gather
// the low halves (lo) and the high halves (hi) back into lane order, one instruction each.
inline void mulhilo16(__m512i a, __m512i m, __m512i& lo, __m512i& hi) {
  const __m512i pe = _mm512_mul_epu32(a, m);                         // lanes 0, 2, …
  const __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);  // 1, 3, …
  lo = _mm512_mask_shuffle_epi32(pe, 0xAAAA, po, _MM_PERM_CDAB);
  hi = _mm512_mask_shuffle_epi32(po, 0x5555, pe, _MM_PERM_CDAB);
}

// The key of every round, computed once per call: ks[2·r], ks[2·r + 1] = key + r·(W0, W1).
struct PhiloxKeySchedule {
  uint32_t k[2 * kPhiloxRounds];
  PhiloxKeySchedule(uint32_t key0, uint32_t key1) {
    for (int r = 0; r < kPhiloxRounds; ++r) {
      k[2 * r] = key0 + uint32_t(r) * kPhiloxW0;
      k[2 * r + 1] = key1 + uint32_t(r) * kPhiloxW1;
    }
  }
};

// Philox4x32-10 on 16 counters in place: c[w] holds word w of the 16 counters.
inline void philox4x32_10_x16(__m512i c[4], const PhiloxKeySchedule& ks) {
  const __m512i m0 = _mm512_set1_epi32(int(kPhiloxM0)), m1 = _mm512_set1_epi32(int(kPhiloxM1));
  __m512i c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
  for (int r = 0; r < kPhiloxRounds; ++r) {
    const __m512i k0 = _mm512_set1_epi32(int(ks.k[2 * r]));  // a broadcast memory operand
    const __m512i k1 = _mm512_set1_epi32(int(ks.k[2 * r + 1]));
    __m512i lo0, hi0, lo1, hi1;
    mulhilo16(c0, m0, lo0, hi0);
    mulhilo16(c2, m1, lo1, hi1);
    c0 = _mm512_ternarylogic_epi32(hi1, c1, k0, 0x96);  // a ^ b ^ c
    c2 = _mm512_ternarylogic_epi32(hi0, c3, k1, 0x96);
    c1 = lo1;
    c3 = lo0;
  }
  c[0] = c0;
  c[1] = c1;
  c[2] = c2;
  c[3] = c3;
}
#endif

#if defined(__AVX2__)
// The same on 8 lanes: shifts and blends in place of AVX-512's masked shuffles.
inline void mulhilo8(__m256i a, __m256i m, __m256i& lo, __m256i& hi) {
  const __m256i pe = _mm256_mul_epu32(a, m);
  const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

inline void philox4x32_10_x8(__m256i c[4], uint32_t key0, uint32_t key1) {
  const __m256i m0 = _mm256_set1_epi32(int(kPhiloxM0)), m1 = _mm256_set1_epi32(int(kPhiloxM1));
  __m256i c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
  for (int r = 0; r < kPhiloxRounds; ++r) {
    const __m256i k0 = _mm256_set1_epi32(int(key0 + uint32_t(r) * kPhiloxW0));
    const __m256i k1 = _mm256_set1_epi32(int(key1 + uint32_t(r) * kPhiloxW1));
    __m256i lo0, hi0, lo1, hi1;
    mulhilo8(c0, m0, lo0, hi0);
    mulhilo8(c2, m1, lo1, hi1);
    c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k0);
    c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k1);
    c1 = lo1;
    c3 = lo0;
  }
  c[0] = c0;
  c[1] = c1;
  c[2] = c2;
  c[3] = c3;
}
#endif

// The words of 16 consecutive counters (lo32(j) + l, hi32(j), lo32(offset), hi32(offset)),
// l < 16, under key (lo32(seed), hi32(seed)): w[k][l] is word k of counter j + l. j is a
// multiple of 16, so lo32(j) + l never carries. One AVX-512 call, two AVX2 calls or 16 scalar
// ones: the same words on every path (the random fills, rng/random.hpp, draw from it).
struct Philox16 {
  uint32_t key0, key1, off0, off1;
#if defined(__AVX512F__)
  PhiloxKeySchedule keys;
#endif
  Philox16(uint64_t seed, uint64_t offset)
      : key0(uint32_t(seed)),
        key1(uint32_t(seed >> 32)),
        off0(uint32_t(offset)),
        off1(uint32_t(offset >> 32))
#if defined(__AVX512F__)
        ,
        keys(key0, key1)
#endif
  {
  }

  inline void words(uint64_t j, uint32_t w[4][16]) const {
    const uint32_t j0 = uint32_t(j), j1 = uint32_t(j >> 32);
#if defined(__AVX512F__)
    __m512i c[4] = {_mm512_add_epi32(_mm512_set1_epi32(int(j0)),
                                     _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
                    _mm512_set1_epi32(int(j1)), _mm512_set1_epi32(int(off0)), _mm512_set1_epi32(int(off1))};
    philox4x32_10_x16(c, keys);
    for (int k = 0; k < 4; ++k) _mm512_storeu_si512(w[k], c[k]);
#elif defined(__AVX2__)
    for (int h = 0; h < 2; ++h) {
      __m256i c[4] = {
          _mm256_add_epi32(_mm256_set1_epi32(int(j0 + 8u * uint32_t(h))), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
          _mm256_set1_epi32(int(j1)), _mm256_set1_epi32(int(off0)), _mm256_set1_epi32(int(off1))};
      philox4x32_10_x8(c, key0, key1);
      for (int k = 0; k < 4; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(w[k] + 8 * h), c[k]);
    }
#else
    const uint32_t key[2] = {key0, key1};
    for (uint32_t l = 0; l < 16; ++l) {
      const uint32_t ctr[4] = {j0 + l, j1, off0, off1};
      uint32_t u[4];
      philox4x32_10(u, ctr, key);
      for (int k = 0; k < 4; ++k) w[k][l] = u[k];
    }
#endif
  }
};

}  // namespace
}  // namespace nndl::rng
