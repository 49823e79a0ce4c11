// The transforms of the random fills, words → values (rng/random.hpp): one block of 16
// Philox counters to 64 float32 or 32 float64 values. Shared by the fills (rng/random.cpp)
// and every kernel that fuses a fill's values into another pass (augment/augment.cpp's
// noise), so both give the same bits. Kernel files only (compiled once per SIMD target).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "rng/random.hpp"
#include "simd/kernel.hpp"
#include "simd/vmath.hpp"

namespace nndl::NNDL_TARGET {
namespace {

constexpr double k2m24 = 1.0 / 16777216.0;          // 2^-24
constexpr double k2m32 = 1.0 / 4294967296.0;        // 2^-32
constexpr double k2m52 = 1.0 / 4503599627370496.0;  // 2^-52
constexpr double k2m53 = 1.0 / 9007199254740992.0;  // 2^-53

// scale·2⁻⁵³ (and ·2⁻²⁴) is exact, and no product below it is subnormal, from here up.
constexpr double kScaleExact = 0x1p-960;

// A 32-bit word as a double, exactly: through int32 (a conversion every target has).
inline double word(uint32_t w) { return double(int32_t(w ^ 0x80000000u)) + 2147483648.0; }
// The top 53 (or 52) bits of the word pair (a, b) as an integer-valued double, exactly.
inline double bits53(uint32_t a, uint32_t b) { return double(int32_t(a >> 5)) * 67108864.0 + double(int32_t(b >> 6)); }
inline double bits52(uint32_t a, uint32_t b) { return double(int32_t(a >> 6)) * 67108864.0 + double(int32_t(b >> 6)); }

inline float as_float(uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
inline uint32_t as_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// The float32 Box–Muller pair of words (a, b) (rng/random.hpp): u1 = 1 − a·2⁻³² in (0, 1],
// u2 = (b >> 8)·2⁻²⁴; zc = √(−2 ln u1)·cos(2π u2), zs = the same with sin; within 2 ulp of
// the double transform (python/nndl_fast/random.py). Float lanes, twice vlog's per vector;
// every a·b + c an explicit std::fma (one instruction on AVX2/AVX-512, libm's exact fmaf on
// baseline), no conversion missing before AVX-512: the same bits on every target. ln u1 and
// r are carried as float pairs hi + lo and the last product is a fused one, so z rounds
// about once. Polynomials by Estrin's scheme where long (latency, see vlog).
__attribute__((always_inline)) inline void normal_pair(uint32_t a, uint32_t b, float& zc, float& zs) {
  // ln u1 = −k·ln 2 + ln(1 + f), u1 = 2^(e−32)·(1 + f), m = 2³² − a = 2^e·(1 + f), 1 + f in
  // [¾, 3⁄2), k = 32 − e. e comes from a float approximation of m (an off-by-one at a
  // boundary only moves f a hair outside its range); f = (m − 2^e)·2^−e exactly, as
  // f_hi + f_lo, from the integer (m = 2³² wraps to 0: e = 32 gives m − 2^e = −a).
  const uint32_t m = 0u - a, m1 = m - 1u;
  const float m_approx = float(int32_t(m1 >> 1)) * 2.0f + float(int32_t((m1 & 1u) + 1u));
  const int32_t e = int32_t((as_bits(m_approx) + 0x00400000u) >> 23) - 127;  // 0 … 32
  const uint32_t pow2 = (1u << (e & 31)) & uint32_t((e >> 5) - 1);           // 2^e mod 2³²
  const int32_t n = int32_t(m - pow2);
  const float scale = as_float(uint32_t(127 - e) << 23);  // 2^−e
  const float f_hi = float(n & int32_t(0xffffff00)) * scale, f_lo = float(n & 0xff) * scale;
  const float f = f_hi + f_lo;
  // ln(1 + f) = f + f²·P(f), P least-squares in relative error on [−¼, ½] (under 0.15 ulp)
  const float f2 = f * f, f4 = f2 * f2;
  const float q01 = std::fma(0.33333343267440796f, f, -0.4999999701976776f);
  const float q23 = std::fma(0.19999535381793976f, f, -0.25000306963920593f);
  const float q45 = std::fma(0.14273667335510254f, f, -0.16651754081249237f);
  const float q67 = std::fma(0.11749739199876785f, f, -0.12758441269397736f);
  const float q89 = std::fma(0.036816637963056564f, f, -0.09074580669403076f);
  const float q = std::fma(f4 * f4, q89, std::fma(f4, std::fma(f2, q67, q45), std::fma(f2, q23, q01)));
  const float k = float(32 - e);
  constexpr float ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-06f;  // k·ln2_hi exact
  const float t = std::fma(f2, q, f_lo) - k * ln2_lo;
  // ln u1 = (f_hi − k·ln2_hi) + t as lh + ll (two fast two-sums: the first term is the larger)
  const float ka = k * ln2_hi, h = f_hi - ka, e1 = f_hi - (h + ka);
  const float t2 = e1 + t, lh = h + t2, ll = t2 - (lh - h);
  // r = √(−2 ln u1) = r_hi + r_lo; r_lo from the exact residual of the square root
  const float L_hi = -2.0f * lh, L_lo = -2.0f * ll;
  const float r_hi = std::sqrt(L_hi);
  // r_lo = (L − r_hi²)/(2 r_hi) = (L − r_hi²)·r_hi/(2L): a correction, so 1/L to ~1e-4 will do,
  // from the bits (an initial guess and one Newton step), beside the square root
  const float y0 = as_float(0x7ef311c3u - as_bits(L_hi));
  const float half_inv = 0.5f * std::fma(y0, std::fma(-L_hi, y0, 1.0f), y0);
  const float r_lo = (std::fma(-r_hi, r_hi, L_hi) + L_lo) * r_hi * half_inv;  // u1 = 1: 0
  // 2π u2 = (j + g)·π/2: j the quarter turn rounded to nearest, g = (u − j·2²²)·2⁻²² in
  // [−½, ½) exactly (24-bit u2); sin(gπ/2) = g·(S0 + g²·S(g²)), cos(gπ/2) = 1 + g²·C(g²),
  // Taylor to g¹¹ and g¹⁰ (the rest under 1e-10); S0 = π/2 as hi + lo
  const uint32_t u = b >> 8, j = (u + (1u << 21)) >> 22;
  const float g = float(int32_t(u) - int32_t(j << 22)) * 0x1p-22f, g2 = g * g;
  float ps = std::fma(-3.598843250074424e-06f, g2, 0.00016044118092395365f);
  ps = std::fma(ps, g2, -0.004681753925979137f);
  ps = std::fma(ps, g2, 0.07969262450933456f);
  ps = std::fma(ps, g2, -0.6459640860557556f);
  constexpr float s0_hi = 1.5707963705062866f, s0_lo = -4.371138828673793e-08f;
  float pc = std::fma(-2.520204179745633e-05f, g2, 0.0009192602592520416f);
  pc = std::fma(pc, g2, -0.020863480865955353f);
  pc = std::fma(pc, g2, 0.25366950035095215f);
  pc = std::fma(pc, g2, -1.2337005138397217f);
  // r·sin = (r·g exactly as rg + rg_lo)·(S0_hi + st), r·cos = r + r·(cos − 1): one rounding
  // of the large term each
  const float cm1 = g2 * pc;
  const float rg = r_hi * g, rg_lo = std::fma(r_hi, g, -rg), st = std::fma(g2, ps, s0_lo);
  const float zs0 = std::fma(rg, s0_hi, std::fma(rg, st, std::fma(r_lo, g, rg_lo) * s0_hi));
  const float zc0 = r_hi + std::fma(r_hi, cm1, std::fma(r_lo, cm1, r_lo));
  // the quarter turn j mod 4 swaps and negates them by bit moves (no select)
  const uint32_t swap = 0u - (j & 1u), sneg = (j & 2u) << 30, cneg = ((j + 1u) & 2u) << 30;
  const uint32_t sb = as_bits(zs0), cb = as_bits(zc0);
  zs = as_float(((sb & ~swap) | (cb & swap)) ^ sneg);
  zc = as_float(((cb & ~swap) | (sb & swap)) ^ cneg);
}

// z of the truncated normal from u in (0, 1): inverse CDF, clamped to the bounds (AS241's
// rounding could step a hair outside them). Plain values, not the Fill, and blends, not
// selects: either would stop the loop vectorising.
struct Truncation {
  double p_lo, p_range, z_lo, z_hi;
  explicit Truncation(const rng::Fill& f) : p_lo(f.p_lo), p_range(f.p_range), z_lo(f.z_lo), z_hi(f.z_hi) {}
  inline double operator()(double u) const {
    const double z = vndtri(p_lo + u * p_range);
    const double lo = vblend(vmask(z < z_lo), z_lo, z);
    return vblend(vmask(lo > z_hi), z_hi, lo);
  }
};

// y[0 : block_elems<T>()] ← the values of one block, from its words w (rng/random.hpp).
template <class T, rng::Dist D>
inline void block_values(T* NNDL_RESTRICT y, const uint32_t (&w)[4][16], const rng::Fill& f) {
  const double loc = f.loc, scale = f.scale;
  const Truncation truncated(f);
  if constexpr (sizeof(T) == 4) {
    const uint32_t* wf = &w[0][0];  // word w of counter l is wf[16·w + l], element 16·w + l
    if constexpr (D == rng::Dist::uniform) {
      if (loc == 0.0 && scale == 1.0) {
        // U[0, 1): k·2⁻²⁴ is exact in float, so float lanes give the double path's bits
#pragma omp simd
        for (int i = 0; i < 64; ++i) y[i] = T(float(int32_t(wf[i] >> 8)) * 0x1p-24f);
      } else if (scale >= kScaleExact) {
        const double scale24 = scale * k2m24;  // exact, and (scale·2⁻²⁴)·k = scale·(k·2⁻²⁴)
#pragma omp simd
        for (int i = 0; i < 64; ++i) y[i] = T(loc + scale24 * double(int32_t(wf[i] >> 8)));
      } else {
#pragma omp simd
        for (int i = 0; i < 64; ++i) y[i] = T(loc + scale * (double(int32_t(wf[i] >> 8)) * k2m24));
      }
    } else if constexpr (D == rng::Dist::truncated_normal) {
#pragma omp simd
      for (int i = 0; i < 64; ++i) y[i] = T(loc + scale * truncated((word(wf[i]) + 0.5) * k2m32));
    } else {
      // Box–Muller in float lanes (normal_pair), then x = fma(scale, z, loc) in float, with
      // scale and loc rounded to float: a double affine step would halve the lanes again
      const float scale_f = float(scale), loc_f = float(loc);
      for (int p = 0; p < 2; ++p) {
#pragma omp simd
        for (int l = 0; l < 16; ++l) {
          float zc, zs;
          normal_pair(w[2 * p][l], w[2 * p + 1][l], zc, zs);
          y[32 * p + l] = T(std::fma(scale_f, zc, loc_f));
          y[32 * p + 16 + l] = T(std::fma(scale_f, zs, loc_f));
        }
      }
    }
  } else {
    if constexpr (D == rng::Dist::uniform) {
      // as float32's: U[0, 1) alone, else the power-of-two step folded into scale when exact
      if (loc == 0.0 && scale == 1.0) {
        for (int h = 0; h < 2; ++h) {
#pragma omp simd
          for (int l = 0; l < 16; ++l) y[16 * h + l] = bits53(w[2 * h][l], w[2 * h + 1][l]) * k2m53;
        }
      } else if (scale >= kScaleExact) {
        const double scale53 = scale * k2m53;
        for (int h = 0; h < 2; ++h) {
#pragma omp simd
          for (int l = 0; l < 16; ++l) y[16 * h + l] = loc + scale53 * bits53(w[2 * h][l], w[2 * h + 1][l]);
        }
      } else {
        for (int h = 0; h < 2; ++h) {
#pragma omp simd
          for (int l = 0; l < 16; ++l) y[16 * h + l] = loc + scale * (bits53(w[2 * h][l], w[2 * h + 1][l]) * k2m53);
        }
      }
    } else if constexpr (D == rng::Dist::truncated_normal) {
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

}  // namespace
}  // namespace nndl::NNDL_TARGET
