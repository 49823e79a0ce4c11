// Natural log and exp in double, written so that `#pragma omp simd` loops calling them
// vectorise (libm's log, exp and pow keep a loop scalar: GCC maps them to vector versions
// only when IEEE semantics are relaxed, which the build never does). Plain +, ·, / and
// integer bit moves, no FMA contraction and no
// conversion instruction missing before AVX-512: they vectorise on every target and give
// the same bits on every target. The caller sends arguments outside their domains to libm.
//
// R: the type the result is wanted in. double: relative error a few 1e-16 (measured
// against libm over the whole domain: log 3.3e-16, exp 4.3e-16). float: shorter series,
// relative error under 1e-9 -- ample for a float32 result, at about half the work.
#pragma once

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

}  // namespace nndl::NNDL_TARGET
