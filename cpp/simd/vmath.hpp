// Natural log and exp in double, sin and cos of 2πu, and the normal quantile Φ⁻¹, written so
// that `#pragma omp simd` loops calling them vectorise (libm's log, exp and pow keep a loop
// scalar: GCC maps them to vector versions only when IEEE semantics are relaxed, which the
// build never does). Plain +, ·, /, √ and integer bit moves, no FMA contraction and no
// conversion instruction missing before AVX-512: they vectorise on every target and give
// the same bits on every target (and on every platform: the random fills, rng/random.cpp,
// rely on it). The caller sends arguments outside their domains to libm. vexpf, float32 exp
// for the loss kernels, is the exception: explicit fused multiply-adds, exact on every target
// but vectorised only where the target has FMA.
//
// R: the type the result is wanted in. double: relative error a few 1e-16 (measured
// against libm over the whole domain: log 3.3e-16, exp 4.3e-16). float: shorter series,
// relative error under 1e-9 -- ample for a float32 result, at about half the work.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace nndl::NNDL_TARGET {

// ln x for normal, positive, finite x. x = 2^e·m with m in [√½, √2), ln m = 2·atanh(s),
// s = (m − 1)/(m + 1), |s| ≤ 0.1716: the series 2s·Σ s^{2j}/(2j + 1), to j = 10 for
// double (the rest under 1e-18) and to j = 4 for float (under 1e-9).
template <class R = double>
inline double vlog(double x) {
  // Integer steps only (a select would stop the AVX2 build vectorising): adding
  // 1 − bits(√½) carries into the exponent exactly when the mantissa is ≥ √2.
  constexpr uint64_t sqrt_half = 0x3fe6a09e667f3bcdULL;
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const uint64_t u = bits + (0x3ff0000000000000ULL - sqrt_half);
  const uint64_t mbits = (u & 0x000fffffffffffffULL) + sqrt_half;  // m in [√½, √2)
  double m;
  std::memcpy(&m, &mbits, sizeof m);
  // e as a double without an int64 conversion: the exponent field placed in the mantissa
  // of 2^52, minus 2^52 + 1023
  const uint64_t ebits = (u >> 52) | 0x4330000000000000ULL;
  double e;
  std::memcpy(&e, &ebits, sizeof e);
  e -= 4503599627370496.0 + 1023.0;
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s, s4 = s2 * s2;
  // Σ_j s2^j/(2j + 3) by Estrin's scheme: a few short dependency chains instead of one
  // deep one, so that a core overlaps several elements (faster than Horner's rule).
  const double a0 = 1.0 / 3 + s2 * (1.0 / 5), a1 = 1.0 / 7 + s2 * (1.0 / 9);
  double q;
  if constexpr (sizeof(R) == sizeof(float)) {
    q = (a0 + s4 * a1) + (s4 * s4) * (1.0 / 11);
  } else {
    const double a2 = 1.0 / 11 + s2 * (1.0 / 13), a3 = 1.0 / 15 + s2 * (1.0 / 17);
    const double a4 = 1.0 / 19 + s2 * (1.0 / 21), s8 = s4 * s4;
    q = (a0 + s4 * a1) + s8 * ((a2 + s4 * a3) + s8 * a4);
  }
  constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  return e * ln2_hi + (2.0 * s + (2.0 * s * s2) * q + e * ln2_lo);
}

// e^z for |z| ≤ 708. z = n·ln 2 + r, |r| ≤ ln2/2 (n rounded by adding 1.5·2^52, so no
// rounding instruction is needed); e^r by its Taylor series, to r^13/13! for double (the
// rest under 5e-18) and to r^8/8! for float (under 2e-10); 2^n built in the exponent bits.
template <class R = double>
inline double vexp(double z) {
  constexpr double log2e = 1.4426950408889634, shifter = 6755399441055744.0;  // 1.5·2^52
  constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const double shifted = z * log2e + shifter;  // n in the low mantissa bits
  const double n = shifted - shifter;
  const double r = (z - n * ln2_hi) - n * ln2_lo;
  // Σ_i r^i/i! by Estrin's scheme (see vlog)
  const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const double a0 = 1.0 + r, a1 = 0.5 + r * (1.0 / 6), a2 = 1.0 / 24 + r * (1.0 / 120);
  const double a3 = 1.0 / 720 + r * (1.0 / 5040);
  double p;
  if constexpr (sizeof(R) == sizeof(float)) {
    p = ((a0 + r2 * a1) + r4 * (a2 + r2 * a3)) + r8 * (1.0 / 40320);
  } else {
    const double a4 = 1.0 / 40320 + r * (1.0 / 362880), a5 = 1.0 / 3628800 + r * (1.0 / 39916800);
    const double a6 = 1.0 / 479001600 + r * (1.0 / 6227020800.0);
    p = ((a0 + r2 * a1) + r4 * (a2 + r2 * a3)) + r8 * ((a4 + r2 * a5) + r4 * a6);
  }
  uint64_t bits;  // 2^n: n + 1023 into the exponent field, again without a conversion
  std::memcpy(&bits, &shifted, sizeof bits);
  bits = (bits + 1023) << 52;
  double two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return p * two_n;
}

// e^z in float lanes for −87 ≤ z ≤ 0, twice the elements of vexp per vector. z = n·ln 2 + r,
// |r| ≲ ln2/2, ln 2 split in two; e^r = 1 + r + r²·P(r), P Cephes' expf polynomial of degree 5
// (Moshier) by Horner's rule; 2^n built in the exponent bits as in vexp. Every a·b + c is a fused
// multiply-add (std::fma), rounded once: one instruction on the AVX2 and AVX-512 targets and
// libm's exact fmaf on baseline x86-64 (slow, but the same bits on every target). Relative
// error under 1e-7 over the range against double exp (tests/test_loss.py measures it).
inline float vexpf(float z) {
  constexpr float log2e = 1.44269504088896341f, shifter = 12582912.0f;  // 1.5·2^23
  constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  const float shifted = std::fma(z, log2e, shifter);
  const float n = shifted - shifter;
  const float r = std::fma(-n, ln2_lo, std::fma(-n, ln2_hi, z));
  float p = std::fma(1.9875691500e-4f, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  const float e = std::fma(p, r * r, r) + 1.0f;
  uint32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  bits = (bits + 127u) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return e * two_n;
}

// sin(2πu) and cos(2πu) for |u| < 2^50 (the Box–Muller angle of a uniform u, rng/random.cpp).
// The reduction is exact, in turns: t = 4u (exact), k = round(t), f = t − k (exact, |f| ≤ ½),
// x = f·π/2 (|x| ≤ π/4, one rounding); sin x and cos x by their Taylor series, to x^17 and
// x^18 for double (the rest under 1e-19) and to x^11 and x^12 for float (under 1e-11); then
// the quarter turn k mod 4 swaps and negates them with integer bit moves (no select, no
// conversion). No FMA contraction: the same bits on every target.
template <class R = double>
inline void vsincos2pi(double u, double& sin_out, double& cos_out) {
  constexpr double shifter = 6755399441055744.0;  // 1.5·2^52: k in the low mantissa bits
  const double t = 4.0 * u;
  const double shifted = t + shifter;
  const double f = t - (shifted - shifter);
  const double x = f * 1.5707963267948966192;
  const double x2 = x * x;
  double ps, pc;  // sin x − x and cos x − 1, as polynomials in x2
  if constexpr (sizeof(R) == sizeof(float)) {
    ps = x * x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (-1.0 / 5040 + x2 * (1.0 / 362880 + x2 * (-1.0 / 39916800)))));
    pc = x2 * (-0.5 + x2 * (1.0 / 24 +
                            x2 * (-1.0 / 720 + x2 * (1.0 / 40320 + x2 * (-1.0 / 3628800 + x2 * (1.0 / 479001600))))));
  } else {
    const double x4 = x2 * x2;
    // Estrin's scheme in x4 (see vlog): pairs of terms, then pairs of pairs.
    const double s0 = -1.0 / 6 + x2 * (1.0 / 120), s1 = -1.0 / 5040 + x2 * (1.0 / 362880);
    const double s2 = -1.0 / 39916800 + x2 * (1.0 / 6227020800.0),
                 s3 = -1.0 / 1307674368000.0 + x2 * (1.0 / 355687428096000.0);
    ps = x * x2 * ((s0 + x4 * s1) + (x4 * x4) * (s2 + x4 * s3));
    const double c0 = -0.5 + x2 * (1.0 / 24), c1 = -1.0 / 720 + x2 * (1.0 / 40320);
    const double c2 = -1.0 / 3628800 + x2 * (1.0 / 479001600),
                 c3 = -1.0 / 87178291200.0 + x2 * (1.0 / 20922789888000.0);
    const double c4 = -1.0 / 6402373705728000.0;
    pc = x2 * ((c0 + x4 * c1) + (x4 * x4) * ((c2 + x4 * c3) + (x4 * x4) * c4));
  }
  const double sx = x + ps, cx = 1.0 + pc;
  uint64_t q, sb, cb;
  std::memcpy(&q, &shifted, sizeof q);
  std::memcpy(&sb, &sx, sizeof sb);
  std::memcpy(&cb, &cx, sizeof cb);
  const uint64_t swap = uint64_t(0) - (q & 1u);  // odd quarter turns: sin ↔ cos
  uint64_t s_bits = (sb & ~swap) | (cb & swap), c_bits = (cb & ~swap) | (sb & swap);
  s_bits ^= (q & 2u) << 62;         // k mod 4 = 2, 3: −sin
  c_bits ^= ((q + 1u) & 2u) << 62;  // k mod 4 = 1, 2: −cos
  std::memcpy(&sin_out, &s_bits, sizeof sin_out);
  std::memcpy(&cos_out, &c_bits, sizeof cos_out);
}

// mask ? a : b for a mask of all ones or all zeros, by integer bit moves: a select of two
// computed doubles would keep an AVX2 loop scalar (GCC does not speculate floating-point
// arithmetic under IEEE semantics, and AVX2 has no masked arithmetic to avoid it).
inline uint64_t vmask(bool c) { return uint64_t(0) - uint64_t(c); }
inline double vblend(uint64_t mask, double a, double b) {
  uint64_t x, y;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  x = (x & mask) | (y & ~mask);
  double r;
  std::memcpy(&r, &x, sizeof r);
  return r;
}

// Φ⁻¹(p), the standard normal quantile, for p in (0, 1) with min(p, 1 − p) ≥ 1e-300:
// Wichura's AS241 (PPND16, Applied Statistics 37, 1988), relative error about 1e-16. Its three
// rational functions (|p − ½| ≤ 0.425; else r = √(−ln min(p, 1 − p)) ≤ 5; r > 5) are all
// computed and blended (vblend), not branched on, so a `#pragma omp simd` loop vectorises;
// ln is vlog.
inline double vndtri(double p) {
  const double q = p - 0.5;
  const double r0 = 0.180625 - q * q;
  const double num0 =
      (((((((2.5090809287301226727e+3 * r0 + 3.3430575583588128105e+4) * r0 + 6.7265770927008700853e+4) * r0 +
           4.5921953931549871457e+4) *
              r0 +
          1.3731693765509461125e+4) *
             r0 +
         1.9715909503065514427e+3) *
            r0 +
        1.3314166789178437745e+2) *
           r0 +
       3.3871328727963666080e+0) *
      q;
  const double den0 =
      ((((((5.2264952788528545610e+3 * r0 + 2.8729085735721942674e+4) * r0 + 3.9307895800092710610e+4) * r0 +
          2.1213794301586595867e+4) *
             r0 +
         5.3941960214247511077e+3) *
            r0 +
        6.8718700749205790830e+2) *
           r0 +
       4.2313330701600911252e+1) *
          r0 +
      1.0;
  const uint64_t lower = vmask(q <= 0.0);
  double tail_p = vblend(lower, p, 1.0 - p);
  tail_p = vblend(vmask(tail_p > 0.5), 0.5, tail_p);  // the central case's: ln's argument in range
  const double r = std::sqrt(-vlog<double>(tail_p));
  const uint64_t near = vmask(r <= 5.0);
  const double t = vblend(near, r - 1.6, r - 5.0);
  // coefficients of the two tail rationals, highest power first: near (r ≤ 5), far (r > 5)
  const double n7 = vblend(near, 7.74545014278341407640e-4, 2.01033439929228813265e-7);
  const double n6 = vblend(near, 2.27238449892691845833e-2, 2.71155556874348757815e-5);
  const double n5 = vblend(near, 2.41780725177450611770e-1, 1.24266094738807843860e-3);
  const double n4 = vblend(near, 1.27045825245236838258e+0, 2.65321895265761230930e-2);
  const double n3 = vblend(near, 3.64784832476320460504e+0, 2.96560571828504891230e-1);
  const double n2 = vblend(near, 5.76949722146069140550e+0, 1.78482653991729133580e+0);
  const double n1 = vblend(near, 4.63033784615654529590e+0, 5.46378491116411436990e+0);
  const double n0 = vblend(near, 1.42343711074968357734e+0, 6.65790464350110377720e+0);
  const double d7 = vblend(near, 1.05075007164441684324e-9, 2.04426310338993978564e-15);
  const double d6 = vblend(near, 5.47593808499534494600e-4, 1.42151175831644588870e-7);
  const double d5 = vblend(near, 1.51986665636164571966e-2, 1.84631831751005468180e-5);
  const double d4 = vblend(near, 1.48103976427480074590e-1, 7.86869131145613259100e-4);
  const double d3 = vblend(near, 6.89767334985100004550e-1, 1.48753612908506148525e-2);
  const double d2 = vblend(near, 1.67638483018380384940e+0, 1.36929880922735805310e-1);
  const double d1 = vblend(near, 2.05319162663775882187e+0, 5.99832206555887937690e-1);
  const double num1 = ((((((n7 * t + n6) * t + n5) * t + n4) * t + n3) * t + n2) * t + n1) * t + n0;
  const double den1 = ((((((d7 * t + d6) * t + d5) * t + d4) * t + d3) * t + d2) * t + d1) * t + 1.0;
  // one division for both rationals: −(a/b) = (−a)/b exactly, the bits of dividing each
  const uint64_t central = vmask(std::fabs(q) <= 0.425);
  const double num = vblend(central, num0, vblend(lower, -num1, num1));
  return num / vblend(central, den0, den1);
}

}  // namespace nndl::NNDL_TARGET
