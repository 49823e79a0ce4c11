// The transforms of the random fills, words → values (rng/random.hpp): one block of 16
// Philox counters to 64 float32 or 32 float64 values. Shared by the fills (rng/random.cpp)
// and every kernel that fuses a fill's values into another pass (augment/augment.cpp's
// noise), so both give the same bits. Kernel files only (compiled once per SIMD target).
#pragma once

#include <cmath>
#include <cstdint>

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
