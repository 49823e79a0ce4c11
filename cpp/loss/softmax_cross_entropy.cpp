// Softmax cross-entropy and distillation rows: one read of each row from memory for its
// statistics, one more (from cache) to write the gradient (8 bytes per float32 element with
// the gradient, 4 without). Formulas: python/nndl_fast/loss.py.
#include "loss/softmax_cross_entropy.hpp"

#include <cmath>
#include <limits>
#include <type_traits>

#include <omp.h>

#include "simd/kernel.hpp"
#include "simd/vmath.hpp"

namespace nndl::NNDL_TARGET {
namespace {

// Fixed, not the vector width: the order of every sum is the code's on every SIMD target.
constexpr int kLanes = 16;
using loss::kBlock;
// Below e^-708 vexp leaves its domain; such terms are 0 next to the row max's e^0 = 1.
constexpr double kExpFloor = -708.0;
constexpr double kInf = std::numeric_limits<double>::infinity();

inline double sum_lanes(double* acc) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

inline void scale_lanes(double* acc, double f) {
  for (int l = 0; l < kLanes; ++l) acc[l] *= f;
}

// e^d for d ≤ 0 (exactly 0 below the floor and for d = −inf; NaN stays NaN). R: the precision
// wanted (float: vexp's shorter series).
template <class R>
__attribute__((always_inline)) inline double ex(double d) {
  const double v = vexp<R>(d < kExpFloor ? kExpFloor : d);
  return d < kExpFloor ? 0.0 : v;
}

// The largest of z[0:n) (NaNs not counted) into m; nan |= whether z holds a NaN.
template <class T>
inline void block_max(const T* z, int64_t n, double& m, bool& nan) {
  T mx[kLanes];
  int bad[kLanes] = {};
  for (int l = 0; l < kLanes; ++l) mx[l] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const T v = z[i + l];
      mx[l] = v > mx[l] ? v : mx[l];
      bad[l] |= !(v == v);
    }
  }
  for (int l = 0; i + l < n; ++l) {
    const T v = z[i + l];
    mx[l] = v > mx[l] ? v : mx[l];
    bad[l] |= !(v == v);
  }
  for (int l = 0; l < kLanes; ++l) {
    if (double(mx[l]) > m) m = double(mx[l]);
    nan = nan || bad[l];
  }
}

// The hot loops live in functions of their own (noinline): inlined into the row functions,
// GCC's if-conversion gives up on some of them and leaves them scalar.

// Adds block zb[0:n) to the lanes: zs += e^{z − ref}; soft: as += a, azs += a·(z − shift);
// smoothing over index targets: azs += w·(z − shift). Lane l takes the elements j ≡ l (mod kLanes).
template <class T, bool kSoft, bool kWeight, bool kSmooth, bool kStore>
__attribute__((noinline)) void ce_block(double* NNDL_RESTRICT zs, double* NNDL_RESTRICT as, double* NNDL_RESTRICT azs,
                                        double* NNDL_RESTRICT eb, const T* zb, const T* qb, const T* wb, int64_t n,
                                        double ref, double shift, double off, double hot) {
  // ok: the lane holds an element (the padded tail's other lanes add 0)
  auto term = [&](int l, T zv, T qv, T wv, bool ok, double* e_out) {
    const double v = double(zv);
    const double e = ex<T>(v - ref);
    if constexpr (kStore) *e_out = e;
    zs[l] += ok ? e : 0.0;
    if constexpr (kSoft) {
      const double wj = kWeight ? double(wv) : 1.0;
      const double a = wj * (off + hot * double(qv));
      as[l] += ok ? a : 0.0;
      azs[l] += ok && a != 0.0 ? a * (v - shift) : 0.0;  // a zero weight on a −inf logit adds 0
    } else if constexpr (kSmooth) {
      if constexpr (kWeight)
        azs[l] += ok && wv != T(0) ? double(wv) * (v - shift) : 0.0;
      else
        azs[l] += ok ? v - shift : 0.0;
    }
  };
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l)
      term(l, zb[i + l], kSoft ? qb[i + l] : T(0), kWeight ? wb[i + l] : T(0), true, kStore ? eb + i + l : nullptr);
  }
  if (i == n) return;
  // The tail through the same vector code: short rows (K = 10) would otherwise be all scalar.
  const int64_t r = n - i;
  T zt[kLanes], qt[kLanes] = {}, wt[kLanes] = {};
  double et[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    zt[l] = zb[i + (l < r ? l : 0)];  // padded with an element of the row: no new NaN or inf
    if constexpr (kSoft) qt[l] = l < r ? qb[i + l] : T(0);
    if constexpr (kWeight) wt[l] = l < r ? wb[i + l] : T(0);
  }
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) term(l, zt[l], qt[l], wt[l], l < r, et + l);
  if constexpr (kStore)
    for (int64_t l = 0; l < r; ++l) eb[i + l] = et[l];
}

// dz_k = g·(S·p_k − a_k) over one block, p_k = e_k·f with e_k = e^{z_k − ref} stored by
// ce_block and f = e^{ref − m}/Z (a_k without the class term of index targets).
template <class T, bool kSoft, bool kWeight>
__attribute__((noinline)) void ce_grad(T* dz, const double* NNDL_RESTRICT e, const T* q, const T* w, double f,
                                       double gs, double g, double off, double hot, int64_t n) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    const double p = e[k] * f;
    double a;
    if constexpr (kSoft)
      a = (kWeight ? double(w[k]) : 1.0) * (off + hot * double(q[k]));
    else
      a = (kWeight ? double(w[k]) : 1.0) * off;
    dz[k] = T(gs * p - g * a);
  }
}

// Index targets: the row's class y (−1: ignored). Soft targets: the row q of `soft`.
template <class T, bool kSoft, bool kWeight, bool kSmooth, bool kGrad>
void ce_row(T* dz, double& row_loss, double* scratch, const T* z, const T* next, int64_t y, const T* q,
            const T* NNDL_RESTRICT w, const loss::CeCoeffs& c, int64_t K) {
  double* refs = scratch + K;  // the reference of each block's stored exponentials (with kGrad)
  if (!kSoft && y < 0) {       // ignored row
    row_loss = 0.0;
    if constexpr (kGrad) {
#pragma omp simd
      for (int64_t k = 0; k < K; ++k) dz[k] = T(0);
    }
    return;
  }
  const double off = c.off, hot = c.hot;
  const double zy = kSoft ? 0.0 : double(z[y]);  // read before an in-place gradient overwrites it
  const double shift = std::isfinite(double(z[0])) ? double(z[0]) : 0.0;  // a sample of the row
  double m = -kInf;
  bool nan = false;
  double zs[kLanes] = {}, as[kLanes] = {}, azs[kLanes] = {};  // Σe^{z−m}; Σa; Σa·(z − shift)
  for (int64_t b0 = 0; b0 < K; b0 += kBlock) {
    const int64_t n = K - b0 < kBlock ? K - b0 : kBlock;
    if (next) prefetch_l2(next + b0, n);
    const double m_old = m;
    block_max(z + b0, n, m, nan);
    if (m != m_old && m_old != -kInf) scale_lanes(zs, ex<T>(m_old - m));
    // While every logit so far is −inf, their exponentials are 0 whatever the reference.
    const double ref = m == -kInf ? 0.0 : m;
    if constexpr (kGrad) refs[b0 / kBlock] = m;  // −inf while every logit is: its factor e^{−inf} = 0
    ce_block<T, kSoft, kWeight, kSmooth, kGrad>(zs, as, azs, kGrad ? scratch + b0 : nullptr, z + b0,
                                                kSoft ? q + b0 : nullptr, kWeight ? w + b0 : nullptr, n, ref, shift,
                                                off, hot);
  }
  const double Z = sum_lanes(zs);
  if (nan || !std::isfinite(m) || !std::isfinite(Z)) {  // NaN, +inf, or every logit −inf
    row_loss = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  const double log_z = vlog(Z);              // Z ≥ 1: the max contributes e^0
  const double lse_c = (m - shift) + log_z;  // log Σe^z − shift
  double S, loss;
  if constexpr (kSoft) {
    S = sum_lanes(as);
    loss = S * lse_c - sum_lanes(azs);
  } else {
    const double wy = kWeight ? double(w[y]) : 1.0;
    const double W = c.weight_sum;
    S = wy * hot + off * W;
    loss = wy * hot != 0.0 ? wy * hot * ((m - zy) + log_z) : 0.0;
    if constexpr (kSmooth) loss += off * (W * lse_c - sum_lanes(azs));
  }
  row_loss = loss;
  if constexpr (kGrad) {
    const double g = c.grad, inv_z = 1.0 / Z, gs = g * S;
    // dz_k = g·(S·p_k − a_k), p_k = e^{z_k − m}/Z
    for (int64_t b0 = 0; b0 < K; b0 += kBlock) {
      const int64_t n = K - b0 < kBlock ? K - b0 : kBlock;
      const double f = ex<T>(refs[b0 / kBlock] - m) * inv_z;
      ce_grad<T, kSoft, kWeight>(dz + b0, scratch + b0, kSoft ? q + b0 : nullptr, kWeight ? w + b0 : nullptr, f, gs, g,
                                 off, hot, n);
    }
    if constexpr (!kSoft) {
      const double p = scratch[y] * (ex<T>(refs[y / kBlock] - m) * inv_z);
      const double a = (kWeight ? double(w[y]) : 1.0) * (off + hot);
      dz[y] = T(gs * p - g * a);
    }
  }
}

template <class T, bool kSoft, bool kWeight, bool kSmooth, bool kGrad>
void ce_rows(T* dlogits, double* row_loss, double* scratch, const T* logits, const int64_t* cls, const T* soft,
             const T* weight, const loss::CeCoeffs& c, int64_t N, int64_t K) {
#pragma omp parallel for num_threads(c.threads) schedule(static) if (c.threads > 1)
  for (int64_t i = 0; i < N; ++i) {
    const T* z = logits + i * K;
    double* mine = kGrad ? scratch + int64_t(omp_get_thread_num()) * loss::scratch_per_thread(K) : nullptr;
    ce_row<T, kSoft, kWeight, kSmooth, kGrad>(kGrad ? dlogits + i * K : nullptr, row_loss[i], mine, z,
                                              i + 1 < N ? z + K : nullptr, kSoft ? 0 : cls[i],
                                              kSoft ? soft + i * K : nullptr, weight, c, K);
  }
}

// Adds block sb[0:n), tb[0:n) to the lanes (kd_row's sums), relative to the references rs, rt.
template <class T, bool kCE, bool kSmooth, bool kUnit, bool kStore>
__attribute__((noinline)) void kd_block(double* NNDL_RESTRICT z1, double* NNDL_RESTRICT zs, double* NNDL_RESTRICT zt,
                                        double* NNDL_RESTRICT bt, double* NNDL_RESTRICT ss,
                                        double* NNDL_RESTRICT es_out, double* NNDL_RESTRICT et_out,
                                        double* NNDL_RESTRICT e1_out, const T* sb, const T* tb, int64_t n, double rs,
                                        double rt, double inv_t, double shift) {
  // ok: the lane holds an element (the padded tail's other lanes add 0); kStore: the
  // exponentials also go to es_out, et_out (and e1_out for a CE term at T ≠ 1)
  auto term = [&](int l, T s_val, T t_val, bool ok, double* eso, double* eto, double* e1o) {
    const double sv = double(s_val) - rs, tv = double(t_val) - rt;
    const double es = kUnit ? ex<T>(sv) : ex<T>(sv * inv_t);
    const double et = kUnit ? ex<T>(tv) : ex<T>(tv * inv_t);
    const double e1 = kCE && !kUnit ? ex<T>(sv) : es;
    if constexpr (kStore) {
      *eso = es;
      *eto = et;
      if constexpr (kCE && !kUnit) *e1o = e1;
    }
    zs[l] += ok ? es : 0.0;
    zt[l] += ok ? et : 0.0;
    bt[l] += ok && et != 0.0 ? et * ((tv - sv) * inv_t) : 0.0;  // a teacher's 0 adds 0, even against −inf
    if constexpr (kCE) z1[l] += ok ? e1 : 0.0;
    if constexpr (kSmooth) ss[l] += ok ? double(s_val) - shift : 0.0;
  };
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l)
      term(l, sb[i + l], tb[i + l], true, es_out + i + l, et_out + i + l, e1_out + i + l);
  }
  if (i == n) return;
  const int64_t r = n - i;  // the tail through the same vector code, padded with row elements
  T st[kLanes], tt[kLanes];
  double e_s[kLanes], e_t[kLanes], e_1[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    st[l] = sb[i + (l < r ? l : 0)];
    tt[l] = tb[i + (l < r ? l : 0)];
  }
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) term(l, st[l], tt[l], l < r, e_s + l, e_t + l, e_1 + l);
  if constexpr (kStore)
    for (int64_t l = 0; l < r; ++l) {
      es_out[i + l] = e_s[l];
      et_out[i + l] = e_t[l];
      if constexpr (kCE && !kUnit) e1_out[i + l] = e_1[l];
    }
}

// ds_k = cs·es_k − ct·et_k (+ c1·e1_k − ca with a CE term) over one block, from the stored
// exponentials (the caller folds each block's factor e^{(ref − m)/T}/Z into cs, ct, c1).
template <class T, bool kCE>
__attribute__((noinline)) void kd_grad(T* ds, const double* NNDL_RESTRICT es, const double* NNDL_RESTRICT et,
                                       const double* NNDL_RESTRICT e1, int64_t n, double cs, double ct, double c1,
                                       double ca) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    double d = cs * es[k] - ct * et[k];
    if constexpr (kCE) d += c1 * e1[k] - ca;
    ds[k] = T(d);
  }
}

// Rows of at most kNarrowK logits (class-index targets) go kLanes rows at a time, lane l holding
// row r0 + l: per-row work (max, log, the class's term) is then vector code too, which short
// rows (K = 10) would otherwise spend most of their time in.
constexpr int64_t kNarrowK = 64;

// e[j][l] = e^{zt[j][l] − m[l]}; zsum += e; smoothing: az += w_j·(zt − m) (lane loops).
template <class T, bool kWeight, bool kSmooth>
__attribute__((noinline)) void narrow_exp(double (*NNDL_RESTRICT e)[kLanes], double* NNDL_RESTRICT zsum,
                                          double* NNDL_RESTRICT az, const double (*zt)[kLanes], const double* m,
                                          const T* w, int64_t K) {
  for (int64_t j = 0; j < K; ++j) {
    const double wj = kWeight ? double(w[j]) : 1.0;
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const double v = zt[j][l];
      const double ej = ex<T>(v - m[l]);
      e[j][l] = ej;
      zsum[l] += ej;
      if constexpr (kSmooth) {
        if constexpr (kWeight)
          az[l] += wj != 0.0 ? wj * (v - m[l]) : 0.0;  // a zero weight on −inf adds 0
        else
          az[l] += v - m[l];
      }
    }
  }
}

// Per lane: the row loss, 1/Z and g·S (index targets; a row's e^0 makes Z ≥ 1 unless flagged).
template <bool kSmooth>
__attribute__((noinline)) void narrow_loss(double* NNDL_RESTRICT loss, double* NNDL_RESTRICT f,
                                           double* NNDL_RESTRICT gs, const double* zsum, const double* az,
                                           const double* m, const double* zy, const double* wy, double off, double hot,
                                           double W, double g) {
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double Z = zsum[l];
    const double log_z = vlog(Z < 1.0 ? 1.0 : Z);
    double v = wy[l] * hot != 0.0 ? wy[l] * hot * ((m[l] - zy[l]) + log_z) : 0.0;
    if constexpr (kSmooth) v += off * (W * log_z - az[l]);
    loss[l] = v;
    f[l] = 1.0 / Z;
    gs[l] = g * (wy[l] * hot + off * W);
  }
}

// gt[j][l] = g·(S·p_j − a_j) for lane l's row, p_j = e_j/Z, a_j = w_j·(off + hot·[j = y]) (lane loops).
template <class T, bool kWeight>
__attribute__((noinline)) void narrow_grad(T (*NNDL_RESTRICT gt)[kLanes], const double (*e)[kLanes], const double* f,
                                           const double* gs, const int64_t* y, const T* w, double g, double off,
                                           double hot, int64_t K) {
  for (int64_t j = 0; j < K; ++j) {
    const double wj = kWeight ? double(w[j]) : 1.0;
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const double a = wj * vblend(vmask(j == y[l]), off + hot, off);
      gt[j][l] = T(gs[l] * (e[j][l] * f[l]) - g * a);
    }
  }
}

template <class T, bool kWeight, bool kSmooth, bool kGrad>
__attribute__((noinline)) void ce_narrow_group(T* dlogits, double* row_loss, const T* logits, const int64_t* cls,
                                               const T* w, const loss::CeCoeffs& c, int64_t r0, int64_t rows,
                                               int64_t K) {
  const double off = c.off, hot = c.hot;
  int64_t row[kLanes], y[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    row[l] = r0 + (l < rows ? l : 0);  // spare lanes repeat the group's first row
    y[l] = cls[row[l]];
  }
  // The group transposed (zt[j][l] = logit j of lane l's row), so every loop below is over lanes.
  double zt[kNarrowK][kLanes], e[kNarrowK][kLanes];
  double m[kLanes], zsum[kLanes] = {}, az[kLanes] = {}, zy[kLanes], wy[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const T* z = logits + row[l] * K;
    for (int64_t j = 0; j < K; ++j) zt[j][l] = double(z[j]);
    const int64_t yl = y[l] < 0 ? 0 : y[l];
    zy[l] = double(z[yl]);
    wy[l] = kWeight ? double(w[yl]) : 1.0;
    m[l] = -kInf;
  }
  for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const double v = zt[j][l];
      m[l] = v > m[l] ? v : m[l];
    }
  }
  narrow_exp<T, kWeight, kSmooth>(e, zsum, az, zt, m, w, K);
  double loss[kLanes], f[kLanes], gs[kLanes];
  const double g = c.grad;
  narrow_loss<kSmooth>(loss, f, gs, zsum, az, m, zy, wy, off, hot, c.weight_sum, g);
  T gt[kGrad ? kNarrowK : 1][kLanes];  // the group's gradient, transposed as zt
  if constexpr (kGrad) narrow_grad<T, kWeight>(gt, e, f, gs, y, w, g, off, hot, K);
  for (int l = 0; l < rows; ++l) {
    const int64_t r = r0 + l;
    T* dz = kGrad ? dlogits + r * K : nullptr;
    if (y[l] < 0) {  // ignored row
      row_loss[r] = 0.0;
      if constexpr (kGrad)
        for (int64_t j = 0; j < K; ++j) dz[j] = T(0);
      continue;
    }
    // NaN (its e^{z − m} is NaN, so is Z), +inf, or every logit −inf
    if (!std::isfinite(m[l]) || !std::isfinite(zsum[l])) {
      row_loss[r] = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    row_loss[r] = loss[l];
    if constexpr (kGrad)
      for (int64_t j = 0; j < K; ++j) dz[j] = gt[j][l];
  }
}

template <class T, bool kWeight, bool kSmooth, bool kGrad>
void ce_narrow_rows(T* dlogits, double* row_loss, const T* logits, const int64_t* cls, const T* weight,
                    const loss::CeCoeffs& c, int64_t N, int64_t K) {
  const int64_t groups = (N + kLanes - 1) / kLanes;
#pragma omp parallel for num_threads(c.threads) schedule(static) if (c.threads > 1)
  for (int64_t b = 0; b < groups; ++b) {
    const int64_t r0 = b * kLanes, rows = N - r0 < kLanes ? N - r0 : kLanes;
    ce_narrow_group<T, kWeight, kSmooth, kGrad>(dlogits, row_loss, logits, cls, weight, c, r0, rows, K);
  }
}

// kCE: a hard-label term; kUnit: T = 1 (the tempered softmax is the plain one).
template <class T, bool kCE, bool kSmooth, bool kUnit, bool kGrad>
void kd_row(T* ds, double& row_loss, double* scratch, const T* s, const T* t, const T* s_next, const T* t_next,
            int64_t y, const loss::KdCoeffs& c, int64_t K) {
  // with kGrad: the stored exponentials e^{(s−rs)/T}, e^{(t−rt)/T}, e^{s−rs}, then each block's rs, rt
  const int64_t blocks = (K + kBlock - 1) / kBlock;
  double* const es_all = kGrad ? scratch : nullptr;
  double* const et_all = kGrad ? scratch + K : nullptr;
  double* const e1_all = kGrad ? (kCE && !kUnit ? scratch + 2 * K : scratch) : nullptr;
  double* const rs_all = kGrad ? scratch + 3 * K : nullptr;
  double* const rt_all = kGrad ? rs_all + blocks : nullptr;
  const double inv_t = c.inv_temperature, off = c.off, hot = c.hot;
  const double sy = kCE ? double(s[y]) : 0.0;  // read before an in-place gradient overwrites it
  const double shift = std::isfinite(double(s[0])) ? double(s[0]) : 0.0;
  double ms = -kInf, mt = -kInf;
  bool nan = false;
  // Σe^{s−ms}, Σe^{(s−ms)/T}, Σe^{(t−mt)/T}, Σe^{(t−mt)/T}·((t−mt) − (s−ms))/T, Σ(s − shift)
  double z1[kLanes] = {}, zs[kLanes] = {}, zt[kLanes] = {}, bt[kLanes] = {}, ss[kLanes] = {};
  for (int64_t b0 = 0; b0 < K; b0 += kBlock) {
    const int64_t n = K - b0 < kBlock ? K - b0 : kBlock;
    if (s_next) {
      prefetch_l2(s_next + b0, n);
      prefetch_l2(t_next + b0, n);
    }
    const double ms_old = ms, mt_old = mt;
    block_max(s + b0, n, ms, nan);
    block_max(t + b0, n, mt, nan);
    if (ms != ms_old && ms_old != -kInf) {
      const double d = ms_old - ms;  // < 0
      if constexpr (kCE) scale_lanes(z1, ex<T>(d));
      scale_lanes(zs, kUnit ? ex<T>(d) : ex<T>(d * inv_t));
      // (s − ms) fell by −d: every bracket of bt rises by −d/T
      for (int l = 0; l < kLanes; ++l) bt[l] += (-d * inv_t) * zt[l];
    }
    if (mt != mt_old && mt_old != -kInf) {
      const double d = mt_old - mt;
      const double f = kUnit ? ex<T>(d) : ex<T>(d * inv_t);
      for (int l = 0; l < kLanes; ++l) {
        bt[l] = f * (bt[l] + (d * inv_t) * zt[l]);
        zt[l] *= f;
      }
    }
    // While a row's logits so far are all −inf, its exponentials are 0 whatever the reference
    // (and a teacher's mass against a student's −inf makes the KL +inf, as it is).
    if constexpr (kGrad) {
      rs_all[b0 / kBlock] = ms;  // −inf while every logit is: the stored exponentials are 0
      rt_all[b0 / kBlock] = mt;
    }
    kd_block<T, kCE, kSmooth, kUnit, kGrad>(z1, zs, zt, bt, ss, kGrad ? es_all + b0 : nullptr,
                                            kGrad ? et_all + b0 : nullptr, kGrad ? e1_all + b0 : nullptr, s + b0,
                                            t + b0, n, ms == -kInf ? 0.0 : ms, mt == -kInf ? 0.0 : mt, inv_t, shift);
  }
  const double ZS = sum_lanes(zs), ZT = sum_lanes(zt), B = sum_lanes(bt);
  const double Z1 = kCE ? (kUnit ? ZS : sum_lanes(z1)) : 1.0;
  if (nan || !std::isfinite(ms) || !std::isfinite(mt) || !std::isfinite(ZS) || !std::isfinite(ZT) ||
      !std::isfinite(Z1)) {
    row_loss = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  // KL(p_t ‖ p_s) = Σ p_t·((t − mt) − (s − ms))/T − log ZT + log ZS
  const double kl = B / ZT - vlog(ZT) + vlog(ZS);
  double loss = c.kl_loss * kl;
  const double log_z1 = kCE ? vlog(Z1) : 0.0;
  if constexpr (kCE) {
    double ce = hot != 0.0 ? hot * ((ms - sy) + log_z1) : 0.0;
    if constexpr (kSmooth) ce += off * (double(K) * ((ms - shift) + log_z1) - sum_lanes(ss));
    loss += c.ce * ce;
  }
  row_loss = loss;
  if constexpr (kGrad) {
    // ds_k = g·(αT·(e^{(s−ms)/T}/ZS − e^{(t−mt)/T}/ZT) + (1 − α)·(S·e^{s−ms}/Z1 − a_k))
    const double g = c.grad, S = hot + off * double(K);
    const double cs = g * c.kl_grad / ZS, ct = g * c.kl_grad / ZT;
    const double c1 = kCE ? g * c.ce * S / Z1 : 0.0, ca = kCE ? g * c.ce * off : 0.0;
    // the factor taking block b's stored exponentials to the row's max: e^{(ref_b − m)/T}
    auto fs = [&](int64_t b) { return kUnit ? ex<T>(rs_all[b] - ms) : ex<T>((rs_all[b] - ms) * inv_t); };
    auto ft = [&](int64_t b) { return kUnit ? ex<T>(rt_all[b] - mt) : ex<T>((rt_all[b] - mt) * inv_t); };
    auto f1 = [&](int64_t b) { return kUnit ? fs(b) : ex<T>(rs_all[b] - ms); };
    for (int64_t b0 = 0; b0 < K; b0 += kBlock) {
      const int64_t n = K - b0 < kBlock ? K - b0 : kBlock, b = b0 / kBlock;
      kd_grad<T, kCE>(ds + b0, es_all + b0, et_all + b0, e1_all + b0, n, cs * fs(b), ct * ft(b), kCE ? c1 * f1(b) : 0.0,
                      ca);
    }
    if constexpr (kCE) {
      const int64_t b = y / kBlock;
      double d = (cs * fs(b)) * es_all[y] - (ct * ft(b)) * et_all[y];
      d += (c1 * f1(b)) * e1_all[y] - g * c.ce * (off + hot);
      ds[y] = T(d);
    }
  }
}

template <class T, bool kCE, bool kSmooth, bool kUnit, bool kGrad>
void kd_rows(T* dstudent, double* row_loss, double* scratch, const T* student, const T* teacher, const int64_t* cls,
             const loss::KdCoeffs& c, int64_t N, int64_t K) {
#pragma omp parallel for num_threads(c.threads) schedule(static) if (c.threads > 1)
  for (int64_t i = 0; i < N; ++i) {
    const bool more = i + 1 < N;
    double* mine = kGrad ? scratch + int64_t(omp_get_thread_num()) * loss::kd_scratch_per_thread(K) : nullptr;
    kd_row<T, kCE, kSmooth, kUnit, kGrad>(kGrad ? dstudent + i * K : nullptr, row_loss[i], mine, student + i * K,
                                          teacher + i * K, more ? student + (i + 1) * K : nullptr,
                                          more ? teacher + (i + 1) * K : nullptr, kCE ? cls[i] : 0, c, K);
  }
}

// Calls fn(std::bool_constant<b0>{}, ...) for the run-time flags: the variants are settled here,
// outside the row loop.
template <class Fn>
void with_flags(Fn&& fn, bool a, bool b, bool c, bool d) {
  auto f3 = [&](auto x, auto y, auto z) { d ? fn(x, y, z, std::true_type{}) : fn(x, y, z, std::false_type{}); };
  auto f2 = [&](auto x, auto y) { c ? f3(x, y, std::true_type{}) : f3(x, y, std::false_type{}); };
  auto f1 = [&](auto x) { b ? f2(x, std::true_type{}) : f2(x, std::false_type{}); };
  a ? f1(std::true_type{}) : f1(std::false_type{});
}

}  // namespace

template <class T>
void softmax_cross_entropy_rows(T* dlogits, double* row_loss, double* scratch, const T* logits, const int64_t* cls,
                                const T* soft, const T* weight, const loss::CeCoeffs& c, int64_t N, int64_t K) {
  if (N == 0 || K == 0) return;
  if (!soft && K <= kNarrowK) {
    with_flags(
        [&](auto weight_f, auto smooth_f, auto grad_f, auto) {
          ce_narrow_rows<T, decltype(weight_f)::value, decltype(smooth_f)::value, decltype(grad_f)::value>(
              dlogits, row_loss, logits, cls, weight, c, N, K);
        },
        weight != nullptr, c.off != 0.0, dlogits != nullptr, false);
    return;
  }
  with_flags(
      [&](auto soft_f, auto weight_f, auto smooth_f, auto grad_f) {
        ce_rows<T, decltype(soft_f)::value, decltype(weight_f)::value, decltype(smooth_f)::value,
                decltype(grad_f)::value>(dlogits, row_loss, scratch, logits, cls, soft, weight, c, N, K);
      },
      soft != nullptr, weight != nullptr, c.off != 0.0, dlogits != nullptr);
}

template <class T>
void distillation_rows(T* dstudent, double* row_loss, double* scratch, const T* student, const T* teacher,
                       const int64_t* cls, const loss::KdCoeffs& c, int64_t N, int64_t K) {
  if (N == 0 || K == 0) return;
  const bool ce = cls != nullptr && c.ce != 0.0;
  with_flags(
      [&](auto ce_f, auto smooth_f, auto unit_f, auto grad_f) {
        kd_rows<T, decltype(ce_f)::value, decltype(ce_f)::value&& decltype(smooth_f)::value, decltype(unit_f)::value,
                decltype(grad_f)::value>(dstudent, row_loss, scratch, student, teacher, cls, c, N, K);
      },
      ce, c.off != 0.0, c.inv_temperature == 1.0, dstudent != nullptr);
}

template void softmax_cross_entropy_rows(float*, double*, double*, const float*, const int64_t*, const float*,
                                         const float*, const loss::CeCoeffs&, int64_t, int64_t);
template void softmax_cross_entropy_rows(double*, double*, double*, const double*, const int64_t*, const double*,
                                         const double*, const loss::CeCoeffs&, int64_t, int64_t);
template void distillation_rows(float*, double*, double*, const float*, const float*, const int64_t*,
                                const loss::KdCoeffs&, int64_t, int64_t);
template void distillation_rows(double*, double*, double*, const double*, const double*, const int64_t*,
                                const loss::KdCoeffs&, int64_t, int64_t);

}  // namespace nndl::NNDL_TARGET
