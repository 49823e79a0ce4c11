// Softmax cross-entropy and distillation rows: one read of each row from memory for its
// statistics, one more (from cache) to write the gradient (8 bytes per float32 element with
// the gradient, 4 without). Formulas: python/nndl_fast/loss.py.
#include "loss/softmax_cross_entropy.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include <omp.h>

#include "norm/stream_store.hpp"
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

// e^d for d ≤ 0 in the logits' precision, float lanes for float32 (vexpf, relative error under
// 1e-7) and double lanes for float64; exactly 0 below the floor and for d = −inf, NaN stays NaN.
// Scalars (block rescalings, the class's own term) always take the double one.
inline double ex(double d) {
  const double v = vexp<double>(d < kExpFloor ? kExpFloor : d);
  return d < kExpFloor ? 0.0 : v;
}
// Below e^-87 vexpf leaves its domain (its value there, even for −inf, is discarded); such terms
// are 0 next to the row max's e^0 = 1.
inline float ex(float d) {
  const float v = vexpf(d);
  return d < -87.0f ? 0.0f : v;
}

// The largest of z[0:n) into m, NaNs not counted: a NaN logit makes its row's sum of
// exponentials NaN, which flags the row.
template <class T>
inline void block_max(const T* z, int64_t n, double& m) {
  T mx[kLanes];
  for (int l = 0; l < kLanes; ++l) mx[l] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const T v = z[i + l];
      mx[l] = v > mx[l] ? v : mx[l];
    }
  }
  for (int l = 0; i + l < n; ++l) {
    const T v = z[i + l];
    mx[l] = v > mx[l] ? v : mx[l];
  }
  for (int l = 0; l < kLanes; ++l)
    if (double(mx[l]) > m) m = double(mx[l]);
}

// The hot loops live in functions of their own (noinline): inlined into the row functions,
// GCC's if-conversion gives up on some of them and leaves them scalar.

// How a row kernel writes its gradient: not at all, by ordinary stores, or by streaming stores
// (an output far larger than the cache, not the input itself: norm/stream_store.hpp).
enum class Out { none, store, stream };

// Plain smoothing (index targets, no weights) sums the raw logits by pairs (ce_block).
template <bool kSoft, bool kWeight, bool kSmooth>
constexpr bool kPairSum = kSmooth && !kSoft && !kWeight;

// Adds block zb[0:n) to the lanes: zs += e^{z − ref} (stored in eb with kStore); soft: as += a,
// azs += a·(z − shift); smoothing over index targets: azs += w·(z − shift), without weights
// azs += z (the caller subtracts K·shift), by pairs z_l + z_{l+8} added in T (a pair's rounding
// is relative to that pair, far below what the smoothing term needs) into azs[0:8). Lane l takes
// the elements j ≡ l (mod kLanes). The exponentials are in T's lanes, every sum in double.

template <class T, bool kSoft, bool kWeight, bool kSmooth, bool kStore>
__attribute__((noinline)) void ce_block(double* NNDL_RESTRICT zs, double* NNDL_RESTRICT as, double* NNDL_RESTRICT azs,
                                        T* NNDL_RESTRICT eb, const T* zb, const T* qb, const T* wb, int64_t n, T ref,
                                        double shift, double off, double hot) {
  // ok: the lane holds an element (the padded tail's other lanes add 0)
  auto term = [&](int l, T zv, T qv, T wv, bool ok, T* e_out) {
    const T e = ex(T(zv - ref));
    if constexpr (kStore) *e_out = e;
    zs[l] += ok ? double(e) : 0.0;
    if constexpr (kSoft) {
      const double v = double(zv);
      const double wj = kWeight ? double(wv) : 1.0;
      const double a = wj * (off + hot * double(qv));
      as[l] += ok ? a : 0.0;
      azs[l] += ok && a != 0.0 ? a * (v - shift) : 0.0;  // a zero weight on a −inf logit adds 0
    } else if constexpr (kSmooth) {
      if constexpr (kWeight) azs[l] += ok && wv != T(0) ? double(wv) * (double(zv) - shift) : 0.0;
    }
  };
  constexpr int kHalf = kLanes / 2;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l)
      term(l, zb[i + l], kSoft ? qb[i + l] : T(0), kWeight ? wb[i + l] : T(0), true, kStore ? eb + i + l : nullptr);
    if constexpr (kPairSum<kSoft, kWeight, kSmooth>) {
#pragma omp simd
      for (int l = 0; l < kHalf; ++l) azs[l] += double(T(zb[i + l] + zb[i + l + kHalf]));
    }
  }
  if (i == n) return;
  // The tail through the same vector code: short rows would otherwise be all scalar.
  const int64_t r = n - i;
  T zt[kLanes], qt[kLanes] = {}, wt[kLanes] = {}, et[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    zt[l] = zb[i + (l < r ? l : 0)];  // padded with an element of the row: no new NaN or inf
    if constexpr (kSoft) qt[l] = l < r ? qb[i + l] : T(0);
    if constexpr (kWeight) wt[l] = l < r ? wb[i + l] : T(0);
  }
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) term(l, zt[l], qt[l], wt[l], l < r, et + l);
  if constexpr (kStore)
    for (int64_t l = 0; l < r; ++l) eb[i + l] = et[l];
  if constexpr (kPairSum<kSoft, kWeight, kSmooth>) {
    T zp[kLanes];
    for (int l = 0; l < kLanes; ++l) zp[l] = l < r ? zt[l] : T(0);
#pragma omp simd
    for (int l = 0; l < kHalf; ++l) azs[l] += double(T(zp[l] + zp[l + kHalf]));
  }
}

// dz_k = g·(S·p_k − a_k) over one block, p_k = e_k·f with e_k = e^{z_k − ref} stored by ce_block
// and f = e^{ref − m}/Z (a_k without the class term of index targets). Plain targets (no soft
// targets, no weights) in T's lanes: e_k·(g·S·f) − g·off, fused.
template <class T, bool kSoft, bool kWeight>
__attribute__((noinline)) void ce_grad(T* NNDL_RESTRICT dz, const T* NNDL_RESTRICT e, const T* q, const T* w, double f,
                                       double gs, double g, double off, double hot, int64_t n) {
  if constexpr (!kSoft && !kWeight) {
    const T c = T(gs * f), ga = T(g * off);
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) dz[k] = std::fma(e[k], c, -ga);  // one rounding (see vexpf)
  } else {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) {
      const double p = double(e[k]) * f;
      double a;
      if constexpr (kSoft)
        a = (kWeight ? double(w[k]) : 1.0) * (off + hot * double(q[k]));
      else
        a = (kWeight ? double(w[k]) : 1.0) * off;
      dz[k] = T(gs * p - g * a);
    }
  }
}

// Index targets: the row's class y (−1: ignored). Soft targets: the row q of `soft`.
// scratch: the row's exponentials (K), then each block's reference (with a gradient).
template <class T, bool kSoft, bool kWeight, bool kSmooth, Out kOut>
void ce_row(T* dz, double& row_loss, T* scratch, const T* z, const T* next, int64_t y, const T* q,
            const T* NNDL_RESTRICT w, const loss::CeCoeffs& c, int64_t K) {
  constexpr bool kGrad = kOut != Out::none;
  T* refs = scratch + K;  // the reference of each block's stored exponentials (with kGrad)
  if (!kSoft && y < 0) {  // ignored row
    row_loss = 0.0;
    if constexpr (kGrad)
      write_out<kOut == Out::stream>(dz, K, [&](T* d, int64_t, int64_t len) {
#pragma omp simd
        for (int64_t k = 0; k < len; ++k) d[k] = T(0);
      });
    return;
  }
  const double off = c.off, hot = c.hot;
  const double zy = kSoft ? 0.0 : double(z[y]);  // read before an in-place gradient overwrites it
  const double shift = std::isfinite(double(z[0])) ? double(z[0]) : 0.0;  // a sample of the row
  double m = -kInf;
  double zs[kLanes] = {}, as[kLanes] = {}, azs[kLanes] = {};  // Σe^{z−m}; Σa; Σa·(z − shift)
  for (int64_t b0 = 0; b0 < K; b0 += kBlock) {
    const int64_t n = K - b0 < kBlock ? K - b0 : kBlock;
    if (next) prefetch_l2(next + b0, n);
    const double m_old = m;
    block_max(z + b0, n, m);
    if (m != m_old && m_old != -kInf) scale_lanes(zs, ex(m_old - m));
    // While every logit so far is −inf, their exponentials are 0 whatever the reference.
    const T ref = m == -kInf ? T(0) : T(m);         // m is a logit: exact in T
    if constexpr (kGrad) refs[b0 / kBlock] = T(m);  // −inf while every logit is: its factor e^{−inf} = 0
    ce_block<T, kSoft, kWeight, kSmooth, kGrad>(zs, as, azs, kGrad ? scratch + b0 : nullptr, z + b0,
                                                kSoft ? q + b0 : nullptr, kWeight ? w + b0 : nullptr, n, ref, shift,
                                                off, hot);
  }
  const double Z = sum_lanes(zs);
  if (!std::isfinite(m) || !std::isfinite(Z)) {  // NaN, +inf, or every logit −inf
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
    if constexpr (kPairSum<kSoft, kWeight, kSmooth>)
      loss += off * (W * lse_c - (sum_lanes(azs) - double(K) * shift));  // azs: Σz
    else if constexpr (kSmooth)
      loss += off * (W * lse_c - sum_lanes(azs));
  }
  row_loss = loss;
  if constexpr (kGrad) {
    const double g = c.grad, inv_z = 1.0 / Z, gs = g * S;
    // The class's own entry in double from its logit: its a_y is large, and S·p_y − a_y may cancel.
    const T dy = kSoft ? T(0) : T(gs * (ex(zy - m) * inv_z) - g * (kWeight ? double(w[y]) : 1.0) * (off + hot));
    // dz_k = g·(S·p_k − a_k), p_k = e^{z_k − m}/Z
    for (int64_t b0 = 0; b0 < K; b0 += kBlock) {
      const int64_t n = K - b0 < kBlock ? K - b0 : kBlock;
      const double f = ex(double(refs[b0 / kBlock]) - m) * inv_z;
      write_out<kOut == Out::stream>(dz + b0, n, [&](T* d, int64_t i0, int64_t len) {
        ce_grad<T, kSoft, kWeight>(d, scratch + b0 + i0, kSoft ? q + b0 + i0 : nullptr, kWeight ? w + b0 + i0 : nullptr,
                                   f, gs, g, off, hot, len);
        if (!kSoft && y >= b0 + i0 && y < b0 + i0 + len) d[y - b0 - i0] = dy;
      });
    }
  }
}

template <class T, bool kSoft, bool kWeight, bool kSmooth, Out kOut>
void ce_rows(T* dlogits, double* row_loss, T* scratch, const T* logits, const int64_t* cls, const T* soft,
             const T* weight, const loss::CeCoeffs& c, int64_t N, int64_t K) {
  constexpr bool kGrad = kOut != Out::none;
  // each thread fences its streaming stores after its share of rows
  const auto fence = [] {
    if constexpr (kOut == Out::stream) stream_fence();
  };
  for_each_index(
      c.threads, N,
      [&](int64_t i) {
        const T* z = logits + i * K;
        T* mine = kGrad ? scratch + int64_t(omp_get_thread_num()) * loss::scratch_per_thread(K) : nullptr;
        ce_row<T, kSoft, kWeight, kSmooth, kOut>(kGrad ? dlogits + i * K : nullptr, row_loss[i], mine, z,
                                                 i + 1 < N ? z + K : nullptr, kSoft ? 0 : cls[i],
                                                 kSoft ? soft + i * K : nullptr, weight, c, K);
      },
      fence);
}

// Adds block sb[0:n), tb[0:n) to the lanes (kd_row's sums), relative to the references rs, rt:
// the exponentials in T's lanes, every sum (and each bracket of bt, from the logits) in double.
template <class T, bool kCE, bool kSmooth, bool kUnit, bool kStore>
__attribute__((noinline)) void kd_block(double* NNDL_RESTRICT z1, double* NNDL_RESTRICT zs, double* NNDL_RESTRICT zt,
                                        double* NNDL_RESTRICT bt, double* NNDL_RESTRICT ss, T* NNDL_RESTRICT es_out,
                                        T* NNDL_RESTRICT et_out, T* NNDL_RESTRICT e1_out, const T* sb, const T* tb,
                                        int64_t n, T rs, T rt, double inv_t, double shift) {
  const T inv_tt = T(inv_t);
  // ok: the lane holds an element (the padded tail's other lanes add 0); kStore: the
  // exponentials also go to es_out, et_out (and e1_out for a CE term at T ≠ 1)
  auto term = [&](int l, T s_val, T t_val, bool ok, T* eso, T* eto, T* e1o) {
    const T sv = T(s_val - rs), tv = T(t_val - rt);
    const T es = kUnit ? ex(sv) : ex(T(sv * inv_tt));
    const T et = kUnit ? ex(tv) : ex(T(tv * inv_tt));
    const T e1 = kCE && !kUnit ? ex(sv) : es;
    if constexpr (kStore) {
      *eso = es;
      *eto = et;
      if constexpr (kCE && !kUnit) *e1o = e1;
    }
    zs[l] += ok ? double(es) : 0.0;
    zt[l] += ok ? double(et) : 0.0;
    const double bracket = ((double(t_val) - double(rt)) - (double(s_val) - double(rs))) * inv_t;
    bt[l] += ok && et != T(0) ? double(et) * bracket : 0.0;  // a teacher's 0 adds 0, even against −inf
    if constexpr (kCE) z1[l] += ok ? double(e1) : 0.0;
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
  T st[kLanes], tt[kLanes], e_s[kLanes], e_t[kLanes], e_1[kLanes];
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
// exponentials (the caller folds each block's factor e^{(ref − m)/T}/Z into cs, ct, c1); in
// double: the student's and the teacher's terms may cancel.
template <class T, bool kCE>
__attribute__((noinline)) void kd_grad(T* NNDL_RESTRICT ds, const T* NNDL_RESTRICT es, const T* NNDL_RESTRICT et,
                                       const T* NNDL_RESTRICT e1, int64_t n, double cs, double ct, double c1,
                                       double ca) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    double d = cs * double(es[k]) - ct * double(et[k]);
    if constexpr (kCE) d += c1 * double(e1[k]) - ca;
    ds[k] = T(d);
  }
}

// Rows of at most kNarrowK logits (class-index targets) go kLanes rows at a time, lane l holding
// row r0 + l: per-row work (max, log, the class's term) is then vector code too, which short
// rows (K = 10) would otherwise spend most of their time in.
using loss::kNarrowK;

// e[j][l] = e^{zt[j][l] − m[l]} in T's lanes; zsum += e; smoothing: az += w_j·(zt − m) (lane loops).
template <class T, bool kWeight, bool kSmooth>
__attribute__((noinline)) void narrow_exp(T (*NNDL_RESTRICT e)[kLanes], double* NNDL_RESTRICT zsum,
                                          double* NNDL_RESTRICT az, const T (*zt)[kLanes], const T* m, const T* w,
                                          int64_t K) {
  for (int64_t j = 0; j < K; ++j) {
    const double wj = kWeight ? double(w[j]) : 1.0;
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const T v = zt[j][l];
      const T ej = ex(T(v - m[l]));
      e[j][l] = ej;
      zsum[l] += double(ej);
      if constexpr (kSmooth) {
        const double d = double(v) - double(m[l]);
        if constexpr (kWeight)
          az[l] += wj != 0.0 ? wj * d : 0.0;  // a zero weight on −inf adds 0
        else
          az[l] += d;
      }
    }
  }
}

// Per lane: the row loss, 1/Z, g·S and the class's own gradient entry g·(S·p_y − a_y), p_y
// from its logit in double (index targets; a row's e^0 makes Z ≥ 1 unless flagged).
template <bool kSmooth>
__attribute__((noinline)) void narrow_loss(double* NNDL_RESTRICT loss, double* NNDL_RESTRICT f,
                                           double* NNDL_RESTRICT gs, double* NNDL_RESTRICT dy, const double* zsum,
                                           const double* az, const double* m, const double* zy, const double* wy,
                                           double off, double hot, double W, double g) {
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    const double Z = zsum[l];
    const double log_z = vlog(Z < 1.0 ? 1.0 : Z);
    const double d = zy[l] - m[l];
    double v = wy[l] * hot != 0.0 ? wy[l] * hot * ((m[l] - zy[l]) + log_z) : 0.0;
    if constexpr (kSmooth) v += off * (W * log_z - az[l]);
    loss[l] = v;
    f[l] = 1.0 / Z;
    gs[l] = g * (wy[l] * hot + off * W);
    dy[l] = gs[l] * (ex(d) * f[l]) - g * wy[l] * (off + hot);
  }
}

// gt[j][l] = g·(S·p_j − a_j) for lane l's row, p_j = e_j/Z, a_j = w_j·off (lane loops; the
// class's own entry is set by the caller). Without weights in T's lanes: e_j·(g·S/Z) − g·off.
template <class T, bool kWeight>
__attribute__((noinline)) void narrow_grad(T (*NNDL_RESTRICT gt)[kLanes], const T (*e)[kLanes], const double* f,
                                           const double* gs, const T* w, double g, double off, int64_t K) {
  if constexpr (!kWeight) {
    T c[kLanes];
    for (int l = 0; l < kLanes; ++l) c[l] = T(gs[l] * f[l]);
    const T ga = T(g * off);
    for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) gt[j][l] = std::fma(e[j][l], c[l], -ga);
    }
  } else {
    for (int64_t j = 0; j < K; ++j) {
      const double ga = g * double(w[j]) * off;
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) gt[j][l] = T(gs[l] * (double(e[j][l]) * f[l]) - ga);
    }
  }
}

template <class T, bool kWeight, bool kSmooth, bool kGrad>
__attribute__((noinline)) void ce_narrow_group(T* dlogits, double* row_loss, const T* logits, const int64_t* cls,
                                               const T* w, const loss::CeCoeffs& c, int64_t r0, int64_t rows,
                                               int64_t K) {
  const double off = c.off, hot = c.hot;
  int64_t at[kLanes], y[kLanes];  // lane l's row starts at logits + at[l]
  for (int l = 0; l < kLanes; ++l) {
    const int64_t r = r0 + (l < rows ? l : 0);  // spare lanes repeat the group's first row
    at[l] = r * K;
    y[l] = cls[r];
  }
  // The group transposed (zt[j][l] = logit j of lane l's row), so every loop below is over lanes.
  // Copied element by element: gathers and scatters are slower than these loads and stores.
  T zt[kNarrowK][kLanes], e[kNarrowK][kLanes], mt[kLanes];
  double m[kLanes], zsum[kLanes] = {}, az[kLanes] = {}, zy[kLanes], wy[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const T* z = logits + at[l];
    for (int64_t j = 0; j < K; ++j) zt[j][l] = z[j];
    mt[l] = -std::numeric_limits<T>::infinity();
  }
  for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) mt[l] = zt[j][l] > mt[l] ? zt[j][l] : mt[l];
  }
  for (int l = 0; l < kLanes; ++l) {
    const int64_t yl = y[l] < 0 ? 0 : y[l];
    zy[l] = double(zt[yl][l]);
    wy[l] = kWeight ? double(w[yl]) : 1.0;
    m[l] = double(mt[l]);
  }
  narrow_exp<T, kWeight, kSmooth>(e, zsum, az, zt, mt, w, K);
  double loss[kLanes], f[kLanes], gs[kLanes], dy[kLanes];
  const double g = c.grad;
  narrow_loss<kSmooth>(loss, f, gs, dy, zsum, az, m, zy, wy, off, hot, c.weight_sum, g);
  // A lane's state: 0 a finite row (its loss and gradient), 1 ignored (loss 0, gradient 0),
  // 2 non-finite (NaN, +inf, or every logit −inf: loss NaN, gradient row not written).
  int state[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    state[l] = y[l] < 0 ? 1 : !std::isfinite(m[l]) || !std::isfinite(zsum[l]) ? 2 : 0;
    if (l < rows)
      row_loss[r0 + l] = state[l] == 0 ? loss[l] : state[l] == 1 ? 0.0 : std::numeric_limits<double>::quiet_NaN();
  }
  if constexpr (kGrad) {
    T gt[kNarrowK][kLanes];  // the group's gradient, transposed as zt
    narrow_grad<T, kWeight>(gt, e, f, gs, w, g, off, K);
    for (int l = 0; l < kLanes; ++l) {
      if (state[l] == 1)
        for (int64_t j = 0; j < K; ++j) gt[j][l] = T(0);
      else if (state[l] == 0)
        gt[y[l]][l] = T(dy[l]);
    }
    for (int l = 0; l < rows; ++l) {
      if (state[l] == 2) continue;
      T* dz = dlogits + at[l];
      for (int64_t j = 0; j < K; ++j) dz[j] = gt[j][l];
    }
  }
}

template <class T, bool kWeight, bool kSmooth, bool kGrad>
void ce_narrow_rows(T* dlogits, double* row_loss, const T* logits, const int64_t* cls, const T* weight,
                    const loss::CeCoeffs& c, int64_t N, int64_t K) {
  const int64_t groups = (N + kLanes - 1) / kLanes;
  for_each_index(c.threads, groups, [&](int64_t b) {
    const int64_t r0 = b * kLanes, rows = N - r0 < kLanes ? N - r0 : kLanes;
    ce_narrow_group<T, kWeight, kSmooth, kGrad>(dlogits, row_loss, logits, cls, weight, c, r0, rows, K);
  });
}

// Rows of at most kLanes logits (class-index targets) go one row per kLanes-lane vector (the
// lanes past K hold −inf), kLanes rows at a time: no transposes, whole vectors in and out.
// The per-row sums are over the kLanes lanes in sum_lanes's order, the per-row log and the
// class's term over the group's rows (narrow_loss).

// op over the kLanes lanes in sum_lanes's order (l with l + 8, then l + 4, l + 2, l + 1),
// unrolled: each step is one vector operation on halves.
template <class V, class Op>
__attribute__((always_inline)) inline V tree_lanes(const V* a, Op op) {
  static_assert(kLanes == 16);
  V b[8], c[4];
#pragma omp simd
  for (int l = 0; l < 8; ++l) b[l] = op(a[l], a[l + 8]);
#pragma omp simd
  for (int l = 0; l < 4; ++l) c[l] = op(b[l], b[l + 4]);
  return op(op(c[0], c[2]), op(c[1], c[3]));
}

// out[l] ← Σ_j t[l][j] in sum_lanes's order (j with j + 8, then + 4, + 2, + 1) for the kLanes
// rows at once: after the first step each step adds the halves of several rows' partial sums
// packed in one vector, so no row ends in a horizontal reduction of its own.
inline void tree_rows(const double (*t)[kLanes], double* out) {
  static_assert(kLanes == 16);
  using V = double __attribute__((vector_size(64)));
  V b[kLanes], c[8], d[4];
  for (int l = 0; l < kLanes; ++l) {  // lane j: t[j] + t[j + 8]
    V lo, hi;
    std::memcpy(&lo, t[l], sizeof(V));
    std::memcpy(&hi, t[l] + 8, sizeof(V));
    b[l] = lo + hi;
  }
  for (int p = 0; p < 8; ++p)  // lanes 0-3: row 2p's b[j] + b[j + 4]; lanes 4-7: row 2p + 1's
    c[p] = __builtin_shufflevector(b[2 * p], b[2 * p + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(b[2 * p], b[2 * p + 1], 4, 5, 6, 7, 12, 13, 14, 15);
  for (int q = 0; q < 4; ++q)  // lanes 2r, 2r + 1: row 4q + r's c[j] + c[j + 2]
    d[q] = __builtin_shufflevector(c[2 * q], c[2 * q + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
           __builtin_shufflevector(c[2 * q], c[2 * q + 1], 2, 3, 6, 7, 10, 11, 14, 15);
  for (int h = 0; h < 2; ++h) {  // lane r: row 8h + r's d[0] + d[1]
    const V f = __builtin_shufflevector(d[2 * h], d[2 * h + 1], 0, 2, 4, 6, 8, 10, 12, 14) +
                __builtin_shufflevector(d[2 * h], d[2 * h + 1], 1, 3, 5, 7, 9, 11, 13, 15);
    std::memcpy(out + 8 * h, &f, sizeof(V));
  }
}

// The group's rows, logits + r0·K on, K ≤ kLanes each: e[l] ← e^{z − m} (0 past K), m[l] ← the
// row's max (NaNs not counted, as block_max), zsum[l] ← Σe, az[l] ← Σ_j w_j·(z_j − m) with
// smoothing (w padded with 0). Stage by stage over the rows: each stage's per-row dependency
// chain is short, so the core overlaps rows (one row's whole chain would stall it).
template <class T, bool kWeight, bool kSmooth>
__attribute__((always_inline)) inline void short_stats(T (*NNDL_RESTRICT e)[kLanes], double* NNDL_RESTRICT m,
                                                       double* NNDL_RESTRICT zsum, double* NNDL_RESTRICT az,
                                                       const T* logits, const T* w, int64_t r0, int64_t rows,
                                                       int64_t K) {
  T v[kLanes][kLanes], mt[kLanes];
  for (int64_t l = 0; l < rows; ++l) {
    const T* z = logits + (r0 + l) * K;
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) v[l][j] = j < K ? z[j] : -std::numeric_limits<T>::infinity();
  }
  for (int64_t l = 0; l < rows; ++l) mt[l] = tree_lanes(v[l], [](T a, T b) { return b > a ? b : a; });
  for (int64_t l = 0; l < rows; ++l) {
    const T ml = mt[l];
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) e[l][j] = ex(T(v[l][j] - ml));  // past K: e^{−inf} = 0
  }
  double t[kLanes][kLanes];  // the rows' terms, summed across the rows at once (tree_rows)
  for (int64_t l = 0; l < kLanes; ++l) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) t[l][j] = l < rows ? double(e[l][j]) : 0.0;
  }
  double sums[kLanes];  // the group's rows' (the spare rows' stand-ins stay as the caller set them)
  tree_rows(t, sums);
  for (int64_t l = 0; l < rows; ++l) zsum[l] = sums[l], m[l] = double(mt[l]);
  if constexpr (kSmooth) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const double ml = l < rows ? m[l] : 0.0;
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        const double d = l < rows ? double(v[l][j]) - ml : 0.0;
        if constexpr (kWeight)
          t[l][j] = w[j] != T(0) ? double(w[j]) * d : 0.0;  // a zero weight on −inf adds 0
        else
          t[l][j] = j < K ? d : 0.0;
      }
    }
    tree_rows(t, sums);
    for (int64_t l = 0; l < rows; ++l) az[l] = sums[l];
  }
}

template <class T, bool kWeight, bool kSmooth, bool kGrad>
__attribute__((noinline)) void ce_short_group(T* dlogits, double* row_loss, const T* logits, const int64_t* cls,
                                              const T* w, const loss::CeCoeffs& c, int64_t r0, int64_t rows,
                                              int64_t K) {
  T e[kLanes][kLanes];
  int64_t y[kLanes];
  double m[kLanes], zsum[kLanes], az[kLanes], zy[kLanes], wy[kLanes];
  for (int l = 0; l < kLanes; ++l) {  // spare lanes: a finite stand-in, its results unused
    m[l] = zy[l] = az[l] = 0.0;
    zsum[l] = wy[l] = 1.0;
    y[l] = 0;
  }
  // Every row of the group is read before any gradient is written (in place, dlogits = logits).
  short_stats<T, kWeight, kSmooth>(e, m, zsum, az, logits, w, r0, rows, K);
  for (int64_t l = 0; l < rows; ++l) {
    y[l] = cls[r0 + l];
    const int64_t yl = y[l] < 0 ? 0 : y[l];
    zy[l] = double(logits[(r0 + l) * K + yl]);
    wy[l] = kWeight ? double(w[yl]) : 1.0;
  }
  double loss[kLanes], f[kLanes], gs[kLanes], dy[kLanes];
  const double off = c.off, hot = c.hot, g = c.grad;
  narrow_loss<kSmooth>(loss, f, gs, dy, zsum, az, m, zy, wy, off, hot, c.weight_sum, g);
  for (int64_t l = 0; l < rows; ++l) {
    // 0 a finite row, 1 ignored (loss 0, gradient 0), 2 non-finite (loss NaN, gradient not written)
    const int state = y[l] < 0 ? 1 : !std::isfinite(m[l]) || !std::isfinite(zsum[l]) ? 2 : 0;
    row_loss[r0 + l] = state == 0 ? loss[l] : state == 1 ? 0.0 : std::numeric_limits<double>::quiet_NaN();
    if (!kGrad || state == 2) continue;
    T* d = dlogits + (r0 + l) * K;
    const int64_t yl = y[l];
    const T dyl = T(dy[l]);
    const bool zero = state == 1;
    if constexpr (!kWeight) {
      const T cl = T(gs[l] * f[l]), ga = T(g * off);
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        const T v = zero ? T(0) : j == yl ? dyl : std::fma(e[l][j], cl, -ga);
        if (j < K) d[j] = v;
      }
    } else {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        const T v = zero ? T(0) : j == yl ? dyl : T(gs[l] * (double(e[l][j]) * f[l]) - g * double(w[j]) * off);
        if (j < K) d[j] = v;
      }
    }
  }
}

template <class T, bool kWeight, bool kSmooth, bool kGrad>
void ce_short_rows(T* dlogits, double* row_loss, const T* logits, const int64_t* cls, const T* weight,
                   const loss::CeCoeffs& c, int64_t N, int64_t K) {
  T wp[kLanes];  // the weights padded with 0 to a whole vector
  for (int l = 0; l < kLanes; ++l) wp[l] = kWeight && l < K ? weight[l] : T(0);
  const int64_t groups = (N + kLanes - 1) / kLanes;
  for_each_index(c.threads, groups, [&](int64_t b) {
    const int64_t r0 = b * kLanes, rows = N - r0 < kLanes ? N - r0 : kLanes;
    ce_short_group<T, kWeight, kSmooth, kGrad>(dlogits, row_loss, logits, cls, wp, c, r0, rows, K);
  });
}

// kCE: a hard-label term; kUnit: T = 1 (the tempered softmax is the plain one).
template <class T, bool kCE, bool kSmooth, bool kUnit, bool kGrad>
void kd_row(T* ds, double& row_loss, T* scratch, const T* s, const T* t, const T* s_next, const T* t_next, int64_t y,
            const loss::KdCoeffs& c, int64_t K) {
  // with kGrad: the stored exponentials e^{(s−rs)/T}, e^{(t−rt)/T}, e^{s−rs}, then each block's rs, rt
  const int64_t blocks = (K + kBlock - 1) / kBlock;
  T* const es_all = kGrad ? scratch : nullptr;
  T* const et_all = kGrad ? scratch + K : nullptr;
  T* const e1_all = kGrad ? (kCE && !kUnit ? scratch + 2 * K : scratch) : nullptr;
  T* const rs_all = kGrad ? scratch + 3 * K : nullptr;  // the maxima are logits: exact in T
  T* const rt_all = kGrad ? rs_all + blocks : nullptr;
  const double inv_t = c.inv_temperature, off = c.off, hot = c.hot;
  const double sy = kCE ? double(s[y]) : 0.0;  // read before an in-place gradient overwrites it
  const double shift = std::isfinite(double(s[0])) ? double(s[0]) : 0.0;
  double ms = -kInf, mt = -kInf;
  // Σe^{s−ms}, Σe^{(s−ms)/T}, Σe^{(t−mt)/T}, Σe^{(t−mt)/T}·((t−mt) − (s−ms))/T, Σ(s − shift)
  double z1[kLanes] = {}, zs[kLanes] = {}, zt[kLanes] = {}, bt[kLanes] = {}, ss[kLanes] = {};
  for (int64_t b0 = 0; b0 < K; b0 += kBlock) {
    const int64_t n = K - b0 < kBlock ? K - b0 : kBlock;
    if (s_next) {
      prefetch_l2(s_next + b0, n);
      prefetch_l2(t_next + b0, n);
    }
    const double ms_old = ms, mt_old = mt;
    block_max(s + b0, n, ms);
    block_max(t + b0, n, mt);
    if (ms != ms_old && ms_old != -kInf) {
      const double d = ms_old - ms;  // < 0
      if constexpr (kCE) scale_lanes(z1, ex(d));
      scale_lanes(zs, kUnit ? ex(d) : ex(d * inv_t));
      // (s − ms) fell by −d: every bracket of bt rises by −d/T
      for (int l = 0; l < kLanes; ++l) bt[l] += (-d * inv_t) * zt[l];
    }
    if (mt != mt_old && mt_old != -kInf) {
      const double d = mt_old - mt;
      const double f = kUnit ? ex(d) : ex(d * inv_t);
      for (int l = 0; l < kLanes; ++l) {
        bt[l] = f * (bt[l] + (d * inv_t) * zt[l]);
        zt[l] *= f;
      }
    }
    // While a row's logits so far are all −inf, its exponentials are 0 whatever the reference
    // (and a teacher's mass against a student's −inf makes the KL +inf, as it is).
    if constexpr (kGrad) {
      rs_all[b0 / kBlock] = T(ms);  // −inf while every logit is: the stored exponentials are 0
      rt_all[b0 / kBlock] = T(mt);
    }
    kd_block<T, kCE, kSmooth, kUnit, kGrad>(
        z1, zs, zt, bt, ss, kGrad ? es_all + b0 : nullptr, kGrad ? et_all + b0 : nullptr, kGrad ? e1_all + b0 : nullptr,
        s + b0, t + b0, n, ms == -kInf ? T(0) : T(ms), mt == -kInf ? T(0) : T(mt), inv_t, shift);
  }
  const double ZS = sum_lanes(zs), ZT = sum_lanes(zt), B = sum_lanes(bt);
  const double Z1 = kCE ? (kUnit ? ZS : sum_lanes(z1)) : 1.0;
  if (!std::isfinite(ms) || !std::isfinite(mt) || !std::isfinite(ZS) || !std::isfinite(ZT) || !std::isfinite(Z1)) {
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
    auto fs = [&](int64_t b) { return kUnit ? ex(rs_all[b] - ms) : ex((rs_all[b] - ms) * inv_t); };
    auto ft = [&](int64_t b) { return kUnit ? ex(rt_all[b] - mt) : ex((rt_all[b] - mt) * inv_t); };
    auto f1 = [&](int64_t b) { return kUnit ? fs(b) : ex(rs_all[b] - ms); };
    for (int64_t b0 = 0; b0 < K; b0 += kBlock) {
      const int64_t n = K - b0 < kBlock ? K - b0 : kBlock, b = b0 / kBlock;
      kd_grad<T, kCE>(ds + b0, es_all + b0, et_all + b0, e1_all + b0, n, cs * fs(b), ct * ft(b), kCE ? c1 * f1(b) : 0.0,
                      ca);
    }
    if constexpr (kCE) {  // the class's own entry from its logits, in double: it may cancel
      const double dsy = sy - ms, dty = double(t[y]) - mt;
      double d = cs * (kUnit ? ex(dsy) : ex(dsy * inv_t)) - ct * (kUnit ? ex(dty) : ex(dty * inv_t));
      d += c1 * ex(dsy) - g * c.ce * (off + hot);
      ds[y] = T(d);
    }
  }
}

template <class T, bool kCE, bool kSmooth, bool kUnit, bool kGrad>
void kd_rows(T* dstudent, double* row_loss, T* scratch, const T* student, const T* teacher, const int64_t* cls,
             const loss::KdCoeffs& c, int64_t N, int64_t K) {
  for_each_index(c.threads, N, [&](int64_t i) {
    const bool more = i + 1 < N;
    T* mine = kGrad ? scratch + int64_t(omp_get_thread_num()) * loss::kd_scratch_per_thread(K) : nullptr;
    kd_row<T, kCE, kSmooth, kUnit, kGrad>(kGrad ? dstudent + i * K : nullptr, row_loss[i], mine, student + i * K,
                                          teacher + i * K, more ? student + (i + 1) * K : nullptr,
                                          more ? teacher + (i + 1) * K : nullptr, kCE ? cls[i] : 0, c, K);
  });
}

// Rows of at most kNarrowK logits go kLanes rows at a time, as ce_narrow_group's: lane l holds
// row r0 + l, and kd_row's per-row work (two maxima, the sums, three logs, the class's term) is
// vector code over the lanes. One block: the references are the row maxima themselves.
template <class T, bool kCE, bool kSmooth, bool kUnit, bool kGrad>
__attribute__((noinline)) void kd_narrow_group(T* dstudent, double* row_loss, const T* student, const T* teacher,
                                               const int64_t* cls, const loss::KdCoeffs& c, int64_t r0, int64_t rows,
                                               int64_t K) {
  const double inv_t = c.inv_temperature, off = c.off, hot = c.hot;
  const T inv_tt = T(inv_t);
  int64_t at[kLanes], y[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const int64_t r = r0 + (l < rows ? l : 0);  // spare lanes repeat the group's first row
    at[l] = r * K;
    y[l] = kCE ? cls[r] : 0;
  }
  // The group transposed (st[j][l] = logit j of lane l's row), copied element by element.
  T st[kNarrowK][kLanes], tt[kNarrowK][kLanes], ms_t[kLanes], mt_t[kLanes];
  double ms[kLanes], mt[kLanes], shift[kLanes], sy[kLanes], ty[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const T* s = student + at[l];
    const T* t = teacher + at[l];
    for (int64_t j = 0; j < K; ++j) st[j][l] = s[j], tt[j][l] = t[j];
    ms_t[l] = mt_t[l] = -std::numeric_limits<T>::infinity();
    shift[l] = std::isfinite(double(s[0])) ? double(s[0]) : 0.0;
    sy[l] = double(s[y[l]]);
    ty[l] = double(t[y[l]]);
  }
  for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {  // NaNs not counted (block_max)
      ms_t[l] = st[j][l] > ms_t[l] ? st[j][l] : ms_t[l];
      mt_t[l] = tt[j][l] > mt_t[l] ? tt[j][l] : mt_t[l];
    }
  }
  T rs[kLanes], rt[kLanes];  // the references: the maxima, 0 for a row of −inf (its exponentials are 0)
  for (int l = 0; l < kLanes; ++l) {
    ms[l] = double(ms_t[l]), mt[l] = double(mt_t[l]);
    rs[l] = ms[l] == -kInf ? T(0) : ms_t[l];
    rt[l] = mt[l] == -kInf ? T(0) : mt_t[l];
  }
  // Σe^{s−ms}, Σe^{(s−ms)/T}, Σe^{(t−mt)/T}, Σe^{(t−mt)/T}·((t−mt) − (s−ms))/T, Σ(s − shift)
  double z1[kLanes] = {}, zs[kLanes] = {}, zt[kLanes] = {}, bt[kLanes] = {}, ss[kLanes] = {};
  T es[kGrad ? kNarrowK : 1][kLanes], et[kGrad ? kNarrowK : 1][kLanes],
      e1[kGrad && kCE && !kUnit ? kNarrowK : 1][kLanes];
  for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const T s_val = st[j][l], t_val = tt[j][l];
      const T sv = T(s_val - rs[l]), tv = T(t_val - rt[l]);
      const T e_s = kUnit ? ex(sv) : ex(T(sv * inv_tt));
      const T e_t = kUnit ? ex(tv) : ex(T(tv * inv_tt));
      const T e_1 = kCE && !kUnit ? ex(sv) : e_s;
      if constexpr (kGrad) {
        es[j][l] = e_s;
        et[j][l] = e_t;
        if constexpr (kCE && !kUnit) e1[j][l] = e_1;
      }
      zs[l] += double(e_s);
      zt[l] += double(e_t);
      const double bracket = ((double(t_val) - double(rt[l])) - (double(s_val) - double(rs[l]))) * inv_t;
      bt[l] += e_t != T(0) ? double(e_t) * bracket : 0.0;  // a teacher's 0 adds 0, even against −inf
      if constexpr (kCE && !kUnit) z1[l] += double(e_1);
      if constexpr (kSmooth) ss[l] += double(s_val) - shift[l];
    }
  }
  const double g = c.grad, S = hot + off * double(K);
  const double kl_loss = c.kl_loss, kl_grad = c.kl_grad, ce_w = c.ce;
  double loss[kLanes], cs[kLanes], ct[kLanes], c1[kLanes], dy[kLanes];
  bool bad[kLanes];
  // a flagged lane's sums and differences take 1 and 0 (vlog wants a finite positive value);
  // its results are unused
  double zs_ok[kLanes], zt_ok[kLanes], z1_ok[kLanes], dsy[kLanes], dty[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const double Z1 = kCE && !kUnit ? z1[l] : zs[l];
    bad[l] = !std::isfinite(ms[l]) || !std::isfinite(mt[l]) || !std::isfinite(zs[l]) || !std::isfinite(zt[l]) ||
             !std::isfinite(Z1);
    zs_ok[l] = bad[l] ? 1.0 : zs[l], zt_ok[l] = bad[l] ? 1.0 : zt[l], z1_ok[l] = bad[l] ? 1.0 : Z1;
    dsy[l] = bad[l] ? 0.0 : sy[l] - ms[l], dty[l] = bad[l] ? 0.0 : ty[l] - mt[l];
  }
#pragma omp simd
  for (int l = 0; l < kLanes; ++l) {
    // KL(p_t ‖ p_s) = Σ p_t·((t − mt) − (s − ms))/T − log ZT + log ZS
    double v = kl_loss * (bt[l] / zt_ok[l] - vlog(zt_ok[l]) + vlog(zs_ok[l]));
    const double log_z1 = kCE ? vlog(z1_ok[l]) : 0.0;
    if constexpr (kCE) {
      double ce = hot != 0.0 ? hot * ((ms[l] - sy[l]) + log_z1) : 0.0;
      if constexpr (kSmooth) ce += off * (double(K) * ((ms[l] - shift[l]) + log_z1) - ss[l]);
      v += ce_w * ce;
    }
    loss[l] = v;
    // ds_k = g·(αT·(e^{(s−ms)/T}/ZS − e^{(t−mt)/T}/ZT) + (1 − α)·(S·e^{s−ms}/Z1 − a_k))
    cs[l] = g * kl_grad / zs_ok[l];
    ct[l] = g * kl_grad / zt_ok[l];
    c1[l] = kCE ? g * ce_w * S / z1_ok[l] : 0.0;
    if constexpr (kCE) {  // the class's own entry from its logits, in double: it may cancel
      const double es_y = kUnit ? ex(dsy[l]) : ex(dsy[l] * inv_t), et_y = kUnit ? ex(dty[l]) : ex(dty[l] * inv_t);
      dy[l] = cs[l] * es_y - ct[l] * et_y + c1[l] * ex(dsy[l]) - g * ce_w * (off + hot);
    }
  }
  for (int64_t l = 0; l < rows; ++l) row_loss[r0 + l] = bad[l] ? std::numeric_limits<double>::quiet_NaN() : loss[l];
  if constexpr (kGrad) {
    const double ca = kCE ? g * ce_w * off : 0.0;
    T gt[kNarrowK][kLanes];                           // the group's gradient, transposed as st
    const T(*e1p)[kLanes] = kCE && !kUnit ? e1 : es;  // e^{s−ms}: the tempered one itself at T = 1
    for (int64_t j = 0; j < K; ++j) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        double d = cs[l] * double(es[j][l]) - ct[l] * double(et[j][l]);
        if constexpr (kCE) d += c1[l] * double(e1p[j][l]) - ca;
        gt[j][l] = T(d);
      }
    }
    for (int64_t l = 0; l < rows; ++l) {
      if (bad[l]) continue;
      if constexpr (kCE) gt[y[l]][l] = T(dy[l]);
      T* d = dstudent + at[l];
      for (int64_t j = 0; j < K; ++j) d[j] = gt[j][l];
    }
  }
}

template <class T, bool kCE, bool kSmooth, bool kUnit, bool kGrad>
void kd_narrow_rows(T* dstudent, double* row_loss, const T* student, const T* teacher, const int64_t* cls,
                    const loss::KdCoeffs& c, int64_t N, int64_t K) {
  const int64_t groups = (N + kLanes - 1) / kLanes;
  for_each_index(c.threads, groups, [&](int64_t b) {
    const int64_t r0 = b * kLanes, rows = N - r0 < kLanes ? N - r0 : kLanes;
    kd_narrow_group<T, kCE, kSmooth, kUnit, kGrad>(dstudent, row_loss, student, teacher, cls, c, r0, rows, K);
  });
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
void softmax_cross_entropy_rows(T* dlogits, double* row_loss, T* scratch, const T* logits, const int64_t* cls,
                                const T* soft, const T* weight, const loss::CeCoeffs& c, int64_t N, int64_t K) {
  if (N == 0 || K == 0) return;
  if (!soft && K <= kNarrowK) {  // short rows (K ≤ kLanes) a row per vector, the others transposed
    with_flags(
        [&](auto weight_f, auto smooth_f, auto grad_f, auto) {
          constexpr bool kWeight = decltype(weight_f)::value, kSmooth = decltype(smooth_f)::value;
          constexpr bool kGrad = decltype(grad_f)::value;
          if (K <= kLanes)
            ce_short_rows<T, kWeight, kSmooth, kGrad>(dlogits, row_loss, logits, cls, weight, c, N, K);
          else
            ce_narrow_rows<T, kWeight, kSmooth, kGrad>(dlogits, row_loss, logits, cls, weight, c, N, K);
        },
        weight != nullptr, c.off != 0.0, dlogits != nullptr, false);
    return;
  }
  // In place, the rows are in the cache already when their gradient is written.
  const bool stream = dlogits != logits && stream_output(N * K * int64_t(sizeof(T)));
  with_flags(
      [&](auto soft_f, auto weight_f, auto smooth_f, auto grad_f) {
        auto rows = [&](auto out) {
          ce_rows<T, decltype(soft_f)::value, decltype(weight_f)::value, decltype(smooth_f)::value,
                  decltype(out)::value>(dlogits, row_loss, scratch, logits, cls, soft, weight, c, N, K);
        };
        if constexpr (!decltype(grad_f)::value)
          rows(std::integral_constant<Out, Out::none>{});
        else if (stream)
          rows(std::integral_constant<Out, Out::stream>{});
        else
          rows(std::integral_constant<Out, Out::store>{});
      },
      soft != nullptr, weight != nullptr, c.off != 0.0, dlogits != nullptr);
}

template <class T>
void distillation_rows(T* dstudent, double* row_loss, T* scratch, const T* student, const T* teacher,
                       const int64_t* cls, const loss::KdCoeffs& c, int64_t N, int64_t K) {
  if (N == 0 || K == 0) return;
  const bool ce = cls != nullptr && c.ce != 0.0;
  with_flags(
      [&](auto ce_f, auto smooth_f, auto unit_f, auto grad_f) {
        constexpr bool kCE = decltype(ce_f)::value, kSmooth = kCE && decltype(smooth_f)::value;
        constexpr bool kUnit = decltype(unit_f)::value, kGrad = decltype(grad_f)::value;
        if (K <= kNarrowK)
          kd_narrow_rows<T, kCE, kSmooth, kUnit, kGrad>(dstudent, row_loss, student, teacher, cls, c, N, K);
        else
          kd_rows<T, kCE, kSmooth, kUnit, kGrad>(dstudent, row_loss, scratch, student, teacher, cls, c, N, K);
      },
      ce, c.off != 0.0, c.inv_temperature == 1.0, dstudent != nullptr);
}

template void softmax_cross_entropy_rows(float*, double*, float*, const float*, const int64_t*, const float*,
                                         const float*, const loss::CeCoeffs&, int64_t, int64_t);
template void softmax_cross_entropy_rows(double*, double*, double*, const double*, const int64_t*, const double*,
                                         const double*, const loss::CeCoeffs&, int64_t, int64_t);
template void distillation_rows(float*, double*, float*, const float*, const float*, const int64_t*,
                                const loss::KdCoeffs&, int64_t, int64_t);
template void distillation_rows(double*, double*, double*, const double*, const double*, const int64_t*,
                                const loss::KdCoeffs&, int64_t, int64_t);

}  // namespace nndl::NNDL_TARGET
