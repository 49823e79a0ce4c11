// Layer-norm kernels (1.49–1.52). See norm/layer_norm.hpp.
#include "norm/layer_norm.hpp"

#include <cmath>

#include "norm/moments.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using norm::LnPlan;

template <class T, bool kGamma, bool kBeta>
void forward_impl(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, double eps,
                  const LnPlan& p) {
  const int64_t D = p.d;
#pragma omp parallel for schedule(static) if (p.rows > 1 && p.rows * D > kSerialBelow)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* NNDL_RESTRICT xr = x + r * D;
    T* NNDL_RESTRICT yr = y + r * D;
    double mu, m2;
    row_stats(xr, D, mu, m2);                           // μ (1.50), Σ(x − μ)² (1.51)
    const double rs = 1.0 / std::sqrt(m2 / double(D) + eps);
    mean[r] = T(mu);
    rstd[r] = T(rs);
    const T m = T(mu), a = T(rs);
    if constexpr (kGamma && kBeta) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) yr[j] = ((xr[j] - m) * a) * gamma[j] + beta[j];  // (1.52)
    } else if constexpr (kGamma) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) yr[j] = ((xr[j] - m) * a) * gamma[j];
    } else if constexpr (kBeta) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - m) * a + beta[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - m) * a;
    }
  }
}

// One row: pass 1 takes Σg and Σg·x̂ (and adds dy·x̂, dy to the chunk's dγ, dβ partials);
// pass 2, with the row still in cache, writes dx.
template <class T, bool kGamma, bool kPartial>
inline void backward_row(T* NNDL_RESTRICT dx, double* NNDL_RESTRICT pg, double* NNDL_RESTRICT pb,
                         const T* NNDL_RESTRICT dy, const T* NNDL_RESTRICT x, double mu, double rs,
                         const T* NNDL_RESTRICT gamma, int64_t D) {
  double sg[kLanes] = {}, sgx[kLanes] = {};
  int64_t j0 = 0;
  for (; j0 + kLanes <= D; j0 += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const int64_t j = j0 + l;
      const double xh = (double(x[j]) - mu) * rs;
      const double d = double(dy[j]);
      const double g = kGamma ? d * double(gamma[j]) : d;
      sg[l] += g;
      sgx[l] += g * xh;
      if constexpr (kPartial) {
        pg[j] += d * xh;
        pb[j] += d;
      }
    }
  }
  for (int l = 0; j0 + l < D; ++l) {
    const int64_t j = j0 + l;
    const double xh = (double(x[j]) - mu) * rs;
    const double d = double(dy[j]);
    const double g = kGamma ? d * double(gamma[j]) : d;
    sg[l] += g;
    sgx[l] += g * xh;
    if constexpr (kPartial) {
      pg[j] += d * xh;
      pb[j] += d;
    }
  }
  const double k1 = sum_lanes(sg) / double(D);   // mean(g)
  const double k2 = sum_lanes(sgx) / double(D);  // mean(g·x̂)
  // dx = rs·(g − k1 − x̂·k2) = rs·g + (x − μ)·c1 + c0, with c1 = −rs²·k2, c0 = −rs·k1
  const double c1 = -rs * rs * k2, c0 = -rs * k1;
#pragma omp simd
  for (int64_t i = 0; i < D; ++i) {
    const double g = kGamma ? double(dy[i]) * double(gamma[i]) : double(dy[i]);
    dx[i] = T(rs * g + (double(x[i]) - mu) * c1 + c0);
  }
}

template <class T, bool kGamma, bool kPartial>
void backward_impl(T* dx, double* partial, const T* dy, const T* x, const T* mean, const T* rstd,
                   const T* gamma, const LnPlan& p) {
  const int64_t D = p.d;
#pragma omp parallel for schedule(static) if (p.chunks > 1 && p.rows * D > kSerialBelow)
  for (int64_t k = 0; k < p.chunks; ++k) {
    double* pg = kPartial ? partial + 2 * k * p.pstride : nullptr;
    double* pb = kPartial ? pg + p.pstride : nullptr;
    if constexpr (kPartial)
      for (int64_t j = 0; j < D; ++j) pg[j] = 0, pb[j] = 0;
    const int64_t r0 = k * p.rows_per_chunk, r1 = min64(r0 + p.rows_per_chunk, p.rows);
    for (int64_t r = r0; r < r1; ++r)
      backward_row<T, kGamma, kPartial>(dx + r * D, pg, pb, dy + r * D, x + r * D, double(mean[r]),
                                        double(rstd[r]), gamma, D);
  }
}

}  // namespace

template <class T>
void ln_forward(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, double eps,
                const LnPlan& p) {
  if (gamma && beta)
    forward_impl<T, true, true>(y, mean, rstd, x, gamma, beta, eps, p);
  else if (gamma)
    forward_impl<T, true, false>(y, mean, rstd, x, gamma, beta, eps, p);
  else if (beta)
    forward_impl<T, false, true>(y, mean, rstd, x, gamma, beta, eps, p);
  else
    forward_impl<T, false, false>(y, mean, rstd, x, gamma, beta, eps, p);
}

template <class T>
void ln_backward(T* dx, double* partial, const T* dy, const T* x, const T* mean, const T* rstd,
                 const T* gamma, const LnPlan& p) {
  if (gamma)
    partial ? backward_impl<T, true, true>(dx, partial, dy, x, mean, rstd, gamma, p)
            : backward_impl<T, true, false>(dx, partial, dy, x, mean, rstd, gamma, p);
  else
    partial ? backward_impl<T, false, true>(dx, partial, dy, x, mean, rstd, gamma, p)
            : backward_impl<T, false, false>(dx, partial, dy, x, mean, rstd, gamma, p);
}

template <class T>
void ln_backward_finalize(T* dgamma, T* dbeta, double* partial, const LnPlan& p) {
  const int64_t D = p.d;
  // Chunk by chunk (rows of the partials read contiguously), into the first chunk's row.
  double* NNDL_RESTRICT g = const_cast<double*>(partial);
  double* NNDL_RESTRICT b = g + p.pstride;
  for (int64_t k = 1; k < p.chunks; ++k) {  // fixed order: thread-count independent
    const double* NNDL_RESTRICT pg = partial + 2 * k * p.pstride;
    const double* NNDL_RESTRICT pb = pg + p.pstride;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) g[j] += pg[j], b[j] += pb[j];
  }
  for (int64_t j = 0; j < D; ++j) {
    if (dgamma) dgamma[j] = p.chunks ? T(g[j]) : T(0);
    if (dbeta) dbeta[j] = p.chunks ? T(b[j]) : T(0);
  }
}

#define NNDL_LN_INSTANTIATE(T)                                                                    \
  template void ln_forward(T*, T*, T*, const T*, const T*, const T*, double, const LnPlan&);      \
  template void ln_backward(T*, double*, const T*, const T*, const T*, const T*, const T*,        \
                            const LnPlan&);                                                       \
  template void ln_backward_finalize(T*, T*, double*, const LnPlan&);
NNDL_LN_INSTANTIATE(float)
NNDL_LN_INSTANTIATE(double)
#undef NNDL_LN_INSTANTIATE

}  // namespace nndl::NNDL_TARGET
