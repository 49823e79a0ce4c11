// Local response normalisation (1.56), forward and backward. See norm/local_response_norm.hpp.
#include "norm/local_response_norm.hpp"

#include <omp.h>

#include <cfloat>
#include <cmath>

#include "norm/moments.hpp"
#include "simd/kernel.hpp"
#include "simd/vmath.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using norm::kLrnBlock;
using norm::LrnParams;
using norm::LrnPower;

// d^{−β} for d ≥ k > 0 (dd: d in double; inv_d = 1/d in the element type U). The special
// powers are taken in U from inv_d: for float32 its sqrt and div are twice as fast, and the
// result is rounded to float32 anyway; the backward needs 1/d too, so one division serves
// both. Any other β: exp(−β·ln d) in double by vlog / vexp, which vectorise (std::pow does
// not: it runs far slower than β = 3/4), valid while d lies in the PowRange of β; the few d
// outside it are redone with std::pow after the loop.
template <LrnPower P, class U>
inline U inv_pow(double dd, U inv_d, double beta) {
  if constexpr (P == LrnPower::half)
    return std::sqrt(inv_d);
  else if constexpr (P == LrnPower::three_quarters)
    return std::sqrt(inv_d) * std::sqrt(std::sqrt(inv_d));
  else if constexpr (P == LrnPower::one)
    return inv_d;
  else
    return U(vexp<U>(-beta * vlog<U>(dd)));
}

// Where vexp(−β·vlog(d)) holds: d normal and finite, and |β·ln d| ≤ 700 (vexp's domain).
// Outside it -- a window that overflowed or holds a NaN, a power beyond double's range --
// std::pow gives the IEEE answer (0, inf, NaN).
struct PowRange {
  double lo, hi;
  explicit PowRange(double beta) {
    const double b = std::fabs(beta);
    lo = b > 0 ? std::fmax(std::exp(-700.0 / b), DBL_MIN) : DBL_MIN;
    hi = b > 0 ? std::fmin(std::exp(700.0 / b), DBL_MAX) : DBL_MAX;
  }
  bool holds(double d) const { return d >= lo && d <= hi; }  // false for NaN
};

// acc += x², acc −= x² over one row of a block.
template <class T>
inline void add_sq(double* NNDL_RESTRICT acc, const T* NNDL_RESTRICT x, int64_t len) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) acc[i] += double(x[i]) * double(x[i]);
}
template <class T>
inline void sub_sq(double* NNDL_RESTRICT acc, const T* NNDL_RESTRICT x, int64_t len) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) acc[i] -= double(x[i]) * double(x[i]);
}

// Moves the running window sum of x² from channel c − 1 to channel c:
// x_{c+hi} enters, x_{c−lo−1} leaves.
template <class T>
inline void slide(double* acc, const T* xb, const LrnParams& p, int64_t c, int64_t C, int64_t S, int64_t len) {
  if (c + p.hi < C) add_sq(acc, xb + (c + p.hi) * S, len);
  if (c - p.lo - 1 >= 0) sub_sq(acc, xb + (c - p.lo - 1) * S, len);
}

// Window sum of channel −1 (channels 0 .. hi−1 entered, nothing left yet).
template <class T>
inline void prime(double* acc, const T* xb, const LrnParams& p, int64_t C, int64_t S, int64_t len) {
  for (int64_t i = 0; i < len; ++i) acc[i] = 0.0;
  for (int64_t j = 0; j < p.hi && j < C; ++j) add_sq(acc, xb + j * S, len);
}

// d = k + α·Σ, the sum clamped at 0 (a running sum may round a little below 0 once
// large squares have left the window; NaN passes through the clamp).
inline double denom(double acc, double k, double alpha) { return k + alpha * (acc < 0.0 ? 0.0 : acc); }

// How many of the block's window sums give a d outside the range (a vectorised count, so
// the scalar pass that redoes them runs only when there are any).
inline int64_t count_outside(const double* acc, double k, double alpha, const PowRange& range, int64_t len) {
  int64_t n = 0;
#pragma omp simd reduction(+ : n)
  for (int64_t i = 0; i < len; ++i) n += range.holds(denom(acc[i], k, alpha)) ? 0 : 1;
  return n;
}

template <class T, LrnPower P>
void forward_impl(T* y, const T* x, const LrnParams& p, int64_t N, int64_t C, int64_t S) {
  const int64_t blocks = (S + kLrnBlock - 1) / kLrnBlock;
  const int64_t tasks = N * blocks;
  const double k = p.k, alpha = p.alpha, beta = p.beta;
  const PowRange range(beta);
#pragma omp parallel for num_threads(::nndl::num_threads()) \
    schedule(dynamic) if (tasks > 1 && N * C * S >= kSerialBelow)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / blocks, s0 = (t % blocks) * kLrnBlock;
    const int64_t len = S - s0 < kLrnBlock ? S - s0 : kLrnBlock;
    const T* xb = x + b * C * S + s0;
    T* yb = y + b * C * S + s0;
    double acc[kLrnBlock];  // Σ x_j² over the window of the current channel, per position
    prime(acc, xb, p, C, S, len);
    for (int64_t c = 0; c < C; ++c) {
      slide(acc, xb, p, c, C, S, len);
      const T* NNDL_RESTRICT xc = xb + c * S;
      T* NNDL_RESTRICT yc = yb + c * S;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) {
        const double dd = denom(acc[i], k, alpha);
        yc[i] = xc[i] * inv_pow<P>(dd, T(1) / T(dd), beta);  // y_p = x_p·d_p^{−β}
      }
      if constexpr (P == LrnPower::general)
        if (count_outside(acc, k, alpha, range, len) > 0)
          for (int64_t i = 0; i < len; ++i) {
            const double dd = denom(acc[i], k, alpha);
            if (!range.holds(dd)) yc[i] = xc[i] * T(std::pow(dd, -beta));
          }
    }
  }
}

// y_p = x_p d_p^{−β} with d_p = k + α Σ_{j∈win(p)} x_j², so
//   ∂L/∂x_q = dy_q d_q^{−β}                              (direct term)
//           − 2αβ x_q Σ_{p: q∈win(p)} dy_p x_p d_p^{−β−1}  (through every d_p whose window holds q)
// and q ∈ [p−lo, p+hi] ⇔ p ∈ [q−hi, q+lo]. The channel loop runs `lo` channels ahead:
// at step t it computes d_t, stores d_t^{−β} and r_t = dy_t x_t d_t^{−β−1} in a ring
// of L + 1 rows (L = lo + hi + 1), adds r_t to the running sum R, and finishes channel
// q = t − lo once r_{q−hi−1} has left R.
template <class T, LrnPower P>
void backward_impl(T* dx, double* scratch, const T* dy, const T* x, const LrnParams& p, int64_t N, int64_t C,
                   int64_t S) {
  const int64_t blocks = (S + kLrnBlock - 1) / kLrnBlock;
  const int64_t tasks = N * blocks;
  const int64_t ring = p.lo + p.hi + 2;  // L + 1 rows
  const double k = p.k, alpha = p.alpha, beta = p.beta;
  const double two_alpha_beta = 2.0 * alpha * beta;
  const PowRange range(beta);
#pragma omp parallel num_threads(p.threads) if (tasks > 1 && N * C * S >= kSerialBelow)
  {
    // Rows of d^{−β} and r, kept in T (they are computed in T): half the ring traffic for float32.
    T* ring_inv = reinterpret_cast<T*>(scratch + omp_get_thread_num() * norm::lrn_backward_scratch(p));
    T* ring_r = ring_inv + ring * kLrnBlock;
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / blocks, s0 = (t % blocks) * kLrnBlock;
      const int64_t len = S - s0 < kLrnBlock ? S - s0 : kLrnBlock;
      const int64_t off = b * C * S + s0;
      const T* xb = x + off;
      const T* gyb = dy + off;
      T* gxb = dx + off;
      double acc[kLrnBlock];  // Σ x_j² over win(lead channel)
      double R[kLrnBlock];    // Σ r_p over p ∈ [q−hi, q+lo] (clipped)
      prime(acc, xb, p, C, S, len);
      for (int64_t i = 0; i < len; ++i) R[i] = 0.0;
      for (int64_t lead = 0; lead < C + p.lo; ++lead) {
        if (lead < C) {
          slide(acc, xb, p, lead, C, S, len);
          const T* NNDL_RESTRICT xc = xb + lead * S;
          const T* NNDL_RESTRICT gyc = gyb + lead * S;
          T* NNDL_RESTRICT inv = ring_inv + (lead % ring) * kLrnBlock;
          T* NNDL_RESTRICT r = ring_r + (lead % ring) * kLrnBlock;
#pragma omp simd
          for (int64_t i = 0; i < len; ++i) {
            const double dd = denom(acc[i], k, alpha);
            const T inv_d = T(1) / T(dd);
            const T iv = inv_pow<P>(dd, inv_d, beta);
            const T r_ = gyc[i] * xc[i] * (iv * inv_d);  // r_p = ∂L/∂y_p · y_p / d_p
            inv[i] = iv;
            r[i] = r_;
            if constexpr (P != LrnPower::general) R[i] += double(r_);
          }
          if constexpr (P == LrnPower::general) {  // d outside the range: std::pow (see inv_pow)
            if (count_outside(acc, k, alpha, range, len) > 0)
              for (int64_t i = 0; i < len; ++i) {
                const double dd = denom(acc[i], k, alpha);
                if (range.holds(dd)) continue;
                const T inv_d = T(1) / T(dd), iv = T(std::pow(dd, -beta));
                inv[i] = iv;
                r[i] = gyc[i] * xc[i] * (iv * inv_d);
              }
#pragma omp simd
            for (int64_t i = 0; i < len; ++i) R[i] += double(r[i]);
          }
        }
        const int64_t q = lead - p.lo;
        if (q < 0) continue;
        if (q - p.hi - 1 >= 0) {
          const T* NNDL_RESTRICT gone = ring_r + ((q - p.hi - 1) % ring) * kLrnBlock;
#pragma omp simd
          for (int64_t i = 0; i < len; ++i) R[i] -= double(gone[i]);
        }
        const T* NNDL_RESTRICT inv = ring_inv + (q % ring) * kLrnBlock;
        const T* NNDL_RESTRICT xq = xb + q * S;
        const T* NNDL_RESTRICT gyq = gyb + q * S;
        T* NNDL_RESTRICT gxq = gxb + q * S;
#pragma omp simd
        for (int64_t i = 0; i < len; ++i)
          gxq[i] = T(double(gyq[i]) * double(inv[i]) - two_alpha_beta * double(xq[i]) * R[i]);  // direct − through d
      }
    }
  }
}

}  // namespace

template <class T>
void lrn_forward(T* y, const T* x, const LrnParams& p, int64_t n, int64_t c, int64_t s) {
  switch (p.power) {  // settled here, outside the loops
    case LrnPower::half:
      return forward_impl<T, LrnPower::half>(y, x, p, n, c, s);
    case LrnPower::three_quarters:
      return forward_impl<T, LrnPower::three_quarters>(y, x, p, n, c, s);
    case LrnPower::one:
      return forward_impl<T, LrnPower::one>(y, x, p, n, c, s);
    default:
      return forward_impl<T, LrnPower::general>(y, x, p, n, c, s);
  }
}

template <class T>
void lrn_backward(T* dx, double* scratch, const T* dy, const T* x, const LrnParams& p, int64_t n, int64_t c,
                  int64_t s) {
  switch (p.power) {
    case LrnPower::half:
      return backward_impl<T, LrnPower::half>(dx, scratch, dy, x, p, n, c, s);
    case LrnPower::three_quarters:
      return backward_impl<T, LrnPower::three_quarters>(dx, scratch, dy, x, p, n, c, s);
    case LrnPower::one:
      return backward_impl<T, LrnPower::one>(dx, scratch, dy, x, p, n, c, s);
    default:
      return backward_impl<T, LrnPower::general>(dx, scratch, dy, x, p, n, c, s);
  }
}

template void lrn_forward(float*, const float*, const LrnParams&, int64_t, int64_t, int64_t);
template void lrn_forward(double*, const double*, const LrnParams&, int64_t, int64_t, int64_t);
template void lrn_backward(float*, double*, const float*, const float*, const LrnParams&, int64_t, int64_t, int64_t);
template void lrn_backward(double*, double*, const double*, const double*, const LrnParams&, int64_t, int64_t, int64_t);

}  // namespace nndl::NNDL_TARGET
