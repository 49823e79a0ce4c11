// Layer-norm kernels (1.49–1.52). See norm/layer_norm.hpp.
#include "norm/layer_norm.hpp"

#include <cmath>

#include "norm/moments.hpp"
#include "norm/stream_store.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using norm::kLnInnerBlock;
using norm::LnPlan;

template <bool kStream, class T, bool kGamma, bool kBeta>
void forward_impl(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, double eps, const LnPlan& p) {
  const int64_t D = p.d;
#pragma omp parallel num_threads(::nndl::num_threads()) if (p.rows > 1 && p.rows * D > kSerialBelow)
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < p.rows; ++r) {
      const T* NNDL_RESTRICT xr = x + r * D;
      double mu, m2;
      row_stats(xr, D, mu, m2, r + 1 < p.rows ? xr + D : nullptr);  // μ (1.50), Σ(x − μ)² (1.51)
      const double rs = 1.0 / std::sqrt(m2 / double(D) + eps);
      mean[r] = T(mu);
      rstd[r] = T(rs);
      const T m = T(mu), a = T(rs);
      write_out<kStream>(y + r * D, D, [&](T* NNDL_RESTRICT o, int64_t j0, int64_t len) {
        const T* NNDL_RESTRICT xj = xr + j0;
        const T* NNDL_RESTRICT gj = kGamma ? gamma + j0 : nullptr;
        const T* NNDL_RESTRICT bj = kBeta ? beta + j0 : nullptr;
        if constexpr (kGamma && kBeta) {
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) o[j] = madd((xj[j] - m) * a, gj[j], bj[j]);  // (1.52)
        } else if constexpr (kGamma) {
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) o[j] = ((xj[j] - m) * a) * gj[j];
        } else if constexpr (kBeta) {
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) o[j] = madd(xj[j] - m, a, bj[j]);
        } else {
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) o[j] = (xj[j] - m) * a;
        }
      });
    }
    if constexpr (kStream) stream_fence();
  }
}

// R rows at once (R = 4, then 1 for the remainder). Pass 1 takes each row's Σg and Σg·x̂
// (g = dy·γ, x̂ = (x − μ)·rstd) and adds Σ_rows dy·x̂ and Σ_rows dy to the chunk's dγ, dβ
// partials -- one update of those per R rows; pass 2, with the rows still in cache, writes
//   dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) = rstd·g + (x − μ)·c1 + c0,
//   c1 = −rstd²·mean(g·x̂),  c0 = −rstd·mean(g).
// Element-wise products are taken in T (as the forward's output); the row sums run in T lanes
// for kLaneRun terms per lane, then in double (see norm/moments.hpp); the dγ, dβ partials
// in T for kFlushRows rows (see backward_impl), then in double. prefetch_next: the caller's
// next R rows follow these; their x is prefetched during pass 1 and their dy during pass 2,
// one line per 16 elements, so memory stays busy through both passes.
template <int R, bool kStream, class T, bool kGamma, bool kPartial>
inline void backward_rows(T* NNDL_RESTRICT dx, T* NNDL_RESTRICT pg, T* NNDL_RESTRICT pb, const T* NNDL_RESTRICT dy,
                          const T* NNDL_RESTRICT x, const T* mean, const T* rstd, const T* NNDL_RESTRICT gamma,
                          int64_t D, bool prefetch_next) {
  T mu[R], rs[R];
  for (int q = 0; q < R; ++q) mu[q] = mean[q], rs[q] = rstd[q];
  double sg[R][kLanes] = {}, sgx[R][kLanes] = {};
  T ag[R][kLanes] = {}, agx[R][kLanes] = {};
  auto step = [&](int64_t j, int l) __attribute__((always_inline)) {
    const T gm = kGamma ? gamma[j] : T(1);
    T pgj = 0, pbj = 0;
    for (int q = 0; q < R; ++q) {
      const T xh = (x[q * D + j] - mu[q]) * rs[q];
      const T d = dy[q * D + j];
      if constexpr (kGamma) {
        const T t = d * xh;  // dy·x̂
        ag[q][l] = madd(d, gm, ag[q][l]);
        agx[q][l] = madd(t, gm, agx[q][l]);
        pgj += t;
      } else {
        ag[q][l] += d;
        agx[q][l] = madd(d, xh, agx[q][l]);
        pgj = madd(d, xh, pgj);
      }
      pbj += d;
    }
    if constexpr (kPartial) {
      pg[j] += pgj;
      pb[j] += pbj;
    }
  };
  int64_t j0 = 0;
  while (j0 + kLanes <= D) {
    const int64_t end = min64(D - kLanes, j0 + (kLaneRun - 1) * kLanes);
    for (; j0 <= end; j0 += kLanes) {
      if (prefetch_next)  // x of the caller's next R rows; their dy during pass 2
        for (int q = R; q < 2 * R; ++q) prefetch_l2(x + q * D + j0, kLanes);
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) step(j0 + l, l);
    }
    for (int q = 0; q < R; ++q)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        sg[q][l] += double(ag[q][l]), sgx[q][l] += double(agx[q][l]);
        ag[q][l] = T(0), agx[q][l] = T(0);
      }
  }
  for (int l = 0; j0 + l < D; ++l) step(j0 + l, l);
  for (int q = 0; q < R; ++q) {
    for (int l = 0; l < kLanes; ++l) sg[q][l] += double(ag[q][l]), sgx[q][l] += double(agx[q][l]);
    const double k1 = sum_lanes(sg[q]) / double(D);   // mean(g)
    const double k2 = sum_lanes(sgx[q]) / double(D);  // mean(g·x̂)
    const double r = double(rs[q]);
    const T a = rs[q], m = mu[q], c1 = T(-r * r * k2), c0 = T(-r * k1);
    const T* NNDL_RESTRICT xq = x + q * D;
    const T* NNDL_RESTRICT gq = dy + q * D;
    const T* NNDL_RESTRICT next_dy = prefetch_next ? gq + R * D : nullptr;
    write_out<kStream>(dx + q * D, D, [&](T* NNDL_RESTRICT o, int64_t i0, int64_t len) {
      const T* NNDL_RESTRICT xi = xq + i0;
      const T* NNDL_RESTRICT gi = gq + i0;
      for (int64_t b = 0; b < len; b += kLanes) {
        const int64_t e = min64(len, b + kLanes);
        if (next_dy) prefetch_l2(next_dy + i0 + b, kLanes);
        if constexpr (kGamma) {
          const T* NNDL_RESTRICT gm = gamma + i0;
#pragma omp simd
          for (int64_t i = b; i < e; ++i) o[i] = madd(a, gi[i] * gm[i], madd(xi[i] - m, c1, c0));
        } else {
#pragma omp simd
          for (int64_t i = b; i < e; ++i) o[i] = madd(a, gi[i], madd(xi[i] - m, c1, c0));
        }
      }
    });
  }
}

// Rows per backward_rows call: enough to share the partial updates, few enough that the
// per-row lane accumulators stay in registers.
constexpr int kRows = 4;
// Rows whose dγ, dβ terms a chunk sums in T before adding them to its double partials: the
// update per row group is then one add in T per column, without conversions, and the T
// sums hold kFlushRows terms (a few ulp, as the row sums' kLaneRun).
constexpr int64_t kFlushRows = 32;

// partial: [chunk][2][pstride] doubles, then (T = float) a T scratch of 2·pstride values per
// chunk (see norm::ln_workspace_doubles). For T = double the rows add into the partials.
template <bool kStream, class T, bool kGamma, bool kPartial>
void backward_impl(T* dx, double* partial, const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma,
                   const LnPlan& p) {
  const int64_t D = p.d;
  constexpr bool kScratch = kPartial && sizeof(T) < sizeof(double);
#pragma omp parallel num_threads(::nndl::num_threads()) if (p.chunks > 1 && p.rows * D > kSerialBelow)
  {
#pragma omp for schedule(static)
    for (int64_t k = 0; k < p.chunks; ++k) {
      double* pg = kPartial ? partial + 2 * k * p.pstride : nullptr;
      double* pb = kPartial ? pg + p.pstride : nullptr;
      T* tg = nullptr;
      T* tb = nullptr;
      if constexpr (kScratch) {
        tg = reinterpret_cast<T*>(partial + 2 * p.chunks * p.pstride + k * p.pstride);
        tb = tg + p.pstride;
        for (int64_t j = 0; j < D; ++j) pg[j] = 0, pb[j] = 0, tg[j] = 0, tb[j] = 0;
      } else if constexpr (kPartial) {
        tg = reinterpret_cast<T*>(pg), tb = reinterpret_cast<T*>(pb);
        for (int64_t j = 0; j < D; ++j) pg[j] = 0, pb[j] = 0;
      }
      auto flush = [&] {
        if constexpr (kScratch) {
#pragma omp simd
          for (int64_t j = 0; j < D; ++j) {
            pg[j] += double(tg[j]), pb[j] += double(tb[j]);
            tg[j] = T(0), tb[j] = T(0);
          }
        }
      };
      const int64_t r0 = k * p.rows_per_chunk, r1 = min64(r0 + p.rows_per_chunk, p.rows);
      int64_t r = r0;
      for (; r + kRows <= r1; r += kRows) {
        backward_rows<kRows, kStream, T, kGamma, kPartial>(dx + r * D, tg, tb, dy + r * D, x + r * D, mean + r,
                                                           rstd + r, gamma, D, r + 2 * kRows <= r1);
        if ((r + kRows - r0) % kFlushRows == 0) flush();
      }
      for (; r < r1; ++r)
        backward_rows<1, kStream, T, kGamma, kPartial>(dx + r * D, tg, tb, dy + r * D, x + r * D, mean + r, rstd + r,
                                                       gamma, D, r + 2 <= r1);
      if ((r1 - r0) % kFlushRows != 0) flush();
    }
    if constexpr (kStream) stream_fence();
  }
}

// Whether a pass over `arrays` (rows, D) arrays (inputs and output) writes its output with
// streaming stores (see norm/stream_store.hpp). Each pass reads its inputs once, so what
// decides is whether all it touches fits in the cache: if not, an ordinarily stored output
// is evicted before the next layer reads it, and only its read-for-ownership remains.
template <class T>
bool streams(const LnPlan& p, int64_t arrays) {
  return stream_output(arrays * p.rows * p.d * int64_t(sizeof(T)));
}

template <bool kStream, class T>
void ln_forward_as(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, double eps, const LnPlan& p) {
  if (gamma && beta)
    forward_impl<kStream, T, true, true>(y, mean, rstd, x, gamma, beta, eps, p);
  else if (gamma)
    forward_impl<kStream, T, true, false>(y, mean, rstd, x, gamma, beta, eps, p);
  else if (beta)
    forward_impl<kStream, T, false, true>(y, mean, rstd, x, gamma, beta, eps, p);
  else
    forward_impl<kStream, T, false, false>(y, mean, rstd, x, gamma, beta, eps, p);
}

template <bool kStream, class T>
void ln_backward_as(T* dx, double* partial, const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma,
                    const LnPlan& p) {
  if (gamma)
    partial ? backward_impl<kStream, T, true, true>(dx, partial, dy, x, mean, rstd, gamma, p)
            : backward_impl<kStream, T, true, false>(dx, partial, dy, x, mean, rstd, gamma, p);
  else
    partial ? backward_impl<kStream, T, false, true>(dx, partial, dy, x, mean, rstd, gamma, p)
            : backward_impl<kStream, T, false, false>(dx, partial, dy, x, mean, rstd, gamma, p);
}

// x as (outer, D, inner), inner > 1 (a block of axes in the middle): one task per (o, inner
// block of kLnInnerBlock columns i). Statistics per column over its D elements of stride
// inner, summed in double around the column's first value K (d = x − K, so a large common
// offset cancels; M2 = Σd² − (Σd)²/D), then the output in a second sweep over the block,
// still in cache. mean, rstd: (outer, inner).
template <class T>
void strided_forward(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, double eps, const LnPlan& p) {
  const int64_t D = p.d, I = p.inner;
#pragma omp parallel for num_threads(::nndl::num_threads()) \
    schedule(static) if (p.rows > 1 && p.rows * kLnInnerBlock * D > kSerialBelow)
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t o = r / p.inner_blocks, i0 = (r % p.inner_blocks) * kLnInnerBlock;
    const int64_t L = min64(kLnInnerBlock, I - i0);
    const T* NNDL_RESTRICT xo = x + o * D * I + i0;
    T* NNDL_RESTRICT yo = y + o * D * I + i0;
    double k[kLnInnerBlock], s1[kLnInnerBlock] = {}, s2[kLnInnerBlock] = {};
    for (int64_t l = 0; l < L; ++l) k[l] = double(xo[l]);
    for (int64_t j = 0; j < D; ++j) {
      const T* NNDL_RESTRICT xj = xo + j * I;
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) {
        const double d = double(xj[l]) - k[l];
        s1[l] += d;
        s2[l] += d * d;
      }
    }
    T m[kLnInnerBlock], a[kLnInnerBlock];
    for (int64_t l = 0; l < L; ++l) {
      const double mu = k[l] + s1[l] / double(D);           // (1.50)
      const double m2 = s2[l] - s1[l] * s1[l] / double(D);  // Σ(x − μ)² (1.51)
      const double rs = 1.0 / std::sqrt((m2 > 0.0 ? m2 : 0.0) / double(D) + eps);
      mean[o * I + i0 + l] = m[l] = T(mu);
      rstd[o * I + i0 + l] = a[l] = T(rs);
    }
    for (int64_t j = 0; j < D; ++j) {
      const T* NNDL_RESTRICT xj = xo + j * I;
      T* NNDL_RESTRICT yj = yo + j * I;
      const T g = gamma ? gamma[j] : T(1), b = beta ? beta[j] : T(0);
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) yj[l] = madd((xj[l] - m[l]) * a[l], g, b);  // (1.52)
    }
  }
}

// The backward of strided_forward, per task as there: Σg and Σg·x̂ per column (g = dy·γ),
// then dx = rstd·g + (x − μ)·c1 + c0 (as backward_rows); the chunk's dγ, dβ partials
// (double) take Σ_columns dy·x̂ and Σ_columns dy per j.
template <class T>
void strided_backward(T* dx, double* partial, const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma,
                      const LnPlan& p) {
  const int64_t D = p.d, I = p.inner;
#pragma omp parallel for num_threads(::nndl::num_threads()) \
    schedule(static) if (p.chunks > 1 && p.rows * kLnInnerBlock * D > kSerialBelow)
  for (int64_t c = 0; c < p.chunks; ++c) {
    double* pg = partial ? partial + 2 * c * p.pstride : nullptr;
    double* pb = partial ? pg + p.pstride : nullptr;
    if (partial)
      for (int64_t j = 0; j < D; ++j) pg[j] = 0, pb[j] = 0;
    const int64_t r1 = min64((c + 1) * p.rows_per_chunk, p.rows);
    for (int64_t r = c * p.rows_per_chunk; r < r1; ++r) {
      const int64_t o = r / p.inner_blocks, i0 = (r % p.inner_blocks) * kLnInnerBlock;
      const int64_t L = min64(kLnInnerBlock, I - i0);
      const int64_t base = o * D * I + i0;
      T m[kLnInnerBlock], a[kLnInnerBlock];
      double sg[kLnInnerBlock] = {}, sgx[kLnInnerBlock] = {};
      for (int64_t l = 0; l < L; ++l) m[l] = mean[o * I + i0 + l], a[l] = rstd[o * I + i0 + l];
      for (int64_t j = 0; j < D; ++j) {
        const T* NNDL_RESTRICT xj = x + base + j * I;
        const T* NNDL_RESTRICT dj = dy + base + j * I;
        const T gm = gamma ? gamma[j] : T(1);
        double tg = 0, tb = 0;
#pragma omp simd reduction(+ : tg, tb)
        for (int64_t l = 0; l < L; ++l) {
          const T xh = (xj[l] - m[l]) * a[l];
          const T t = dj[l] * xh;  // dy·x̂
          sg[l] += double(dj[l] * gm);
          sgx[l] += double(t * gm);
          tg += double(t);
          tb += double(dj[l]);
        }
        if (partial) pg[j] += tg, pb[j] += tb;
      }
      T c1[kLnInnerBlock], c0[kLnInnerBlock];
      for (int64_t l = 0; l < L; ++l) {
        const double r_ = double(a[l]);
        c1[l] = T(-r_ * r_ * (sgx[l] / double(D)));  // −rstd²·mean(g·x̂)
        c0[l] = T(-r_ * (sg[l] / double(D)));        // −rstd·mean(g)
      }
      for (int64_t j = 0; j < D; ++j) {
        const T* NNDL_RESTRICT xj = x + base + j * I;
        const T* NNDL_RESTRICT dj = dy + base + j * I;
        T* NNDL_RESTRICT oj = dx + base + j * I;
        const T gm = gamma ? gamma[j] : T(1);
#pragma omp simd
        for (int64_t l = 0; l < L; ++l) oj[l] = madd(a[l], dj[l] * gm, madd(xj[l] - m[l], c1[l], c0[l]));
      }
    }
  }
}

}  // namespace

template <class T>
void ln_forward(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, double eps, const LnPlan& p) {
  if (p.inner > 1) return strided_forward(y, mean, rstd, x, gamma, beta, eps, p);
  streams<T>(p, 2) ? ln_forward_as<true>(y, mean, rstd, x, gamma, beta, eps, p)
                   : ln_forward_as<false>(y, mean, rstd, x, gamma, beta, eps, p);
}

template <class T>
void ln_backward(T* dx, double* partial, const T* dy, const T* x, const T* mean, const T* rstd, const T* gamma,
                 const LnPlan& p) {
  if (p.inner > 1) return strided_backward(dx, partial, dy, x, mean, rstd, gamma, p);
  streams<T>(p, 3) ? ln_backward_as<true>(dx, partial, dy, x, mean, rstd, gamma, p)
                   : ln_backward_as<false>(dx, partial, dy, x, mean, rstd, gamma, p);
}

template <class T>
void ln_backward_finalize(T* dgamma, T* dbeta, const double* partial, const LnPlan& p) {
  const int64_t D = p.d;
  const double* g = partial;
  const double* b = partial + p.pstride;
  // Column blocks in parallel; each column sums its chunks in chunk order (thread-count
  // independent), reading the partials row by row within the block.
  constexpr int64_t kCols = 512;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (p.chunks * D > kSerialBelow)
  for (int64_t j0 = 0; j0 < D; j0 += kCols) {
    const int64_t n = min64(kCols, D - j0);
    constexpr int64_t kSpan = lockstep_stride<double>(kCols);
    double sums[2 * kSpan];
    double* NNDL_RESTRICT sg = sums;
    double* NNDL_RESTRICT sb = sums + kSpan;
    for (int64_t j = 0; j < n; ++j) sg[j] = p.chunks ? g[j0 + j] : 0.0, sb[j] = p.chunks ? b[j0 + j] : 0.0;
    for (int64_t k = 1; k < p.chunks; ++k) {
      const double* NNDL_RESTRICT pg = g + 2 * k * p.pstride + j0;
      const double* NNDL_RESTRICT pb = b + 2 * k * p.pstride + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) sg[j] += pg[j], sb[j] += pb[j];
    }
    for (int64_t j = 0; j < n; ++j) {
      if (dgamma) dgamma[j0 + j] = T(sg[j]);
      if (dbeta) dbeta[j0 + j] = T(sb[j]);
    }
  }
}

#define NNDL_LN_INSTANTIATE(T)                                                                             \
  template void ln_forward(T*, T*, T*, const T*, const T*, const T*, double, const LnPlan&);               \
  template void ln_backward(T*, double*, const T*, const T*, const T*, const T*, const T*, const LnPlan&); \
  template void ln_backward_finalize(T*, T*, const double*, const LnPlan&);
NNDL_LN_INSTANTIATE(float)
NNDL_LN_INSTANTIATE(double)
#undef NNDL_LN_INSTANTIATE

}  // namespace nndl::NNDL_TARGET
