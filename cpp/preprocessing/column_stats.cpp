// Column statistics and the per-column affine map (column_stats.hpp): one read of x for the
// statistics (count, mean, M2, min, max of every column), one read and one write for the map.
#include "preprocessing/column_stats.hpp"

#include <cmath>

#include "cache.hpp"
#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using prep::kCount;
using prep::kFields;
using prep::kM2;
using prep::kMax;
using prep::kMean;
using prep::kMin;
using prep::kStatsRows;

// Columns per statistics task of a C-ordered x: a task reads whole rows of up to this many
// features (MNIST's 784 in one), so each row is one sequential stream; its shifts and
// running min/max (3 vectors of T) stay in the L1/L2 cache beside the rows.
constexpr int64_t kColBlock = 1024;
// Lanes of a contiguous column span (F-ordered x): independent sums, combined by a fixed tree.
constexpr int kLanes = 16;
// An x over kPrefetchAbove bytes is read by the moments pass with the rows kPrefetchAhead bytes
// on (at least kPrefetchRows rows) prefetched into the L2, G rows at a time: 8 from
// kGroupRowBytes on, 2 or 4 below (short rows read 8 at a time are slower, and the hardware
// prefetcher does not follow them; docs/performance-notes.md). The min-max pass groups float rows
// alike, long rows prefetched only from an x over half the last-level cache (below, their
// prefetches only cost); float64 rows one at a time.
constexpr int64_t kPrefetchAbove = int64_t{2} << 20;
constexpr int64_t kPrefetchAhead = 16384;
constexpr int64_t kPrefetchRows = 16;
constexpr int64_t kGroupRowBytes = 2048;
// How the grouped passes prefetch: not at all (an x likely in the cache already), the group's
// rows ahead in one go (short rows), or a line of each of them per 64 bytes of columns read
// (long rows, whose lines in one go measured far slower).
enum class Fetch { none, rows, lines };
// Columns per task of the fold, and the merges (blocks × columns) below which it stays serial.
constexpr int64_t kFoldCols = 16;
constexpr int64_t kFoldSerialBelow = int64_t{1} << 11;
// Elements below which a call stays on the calling thread: a region's fork and join cost more.
constexpr int64_t kSerialBelow = int64_t{1} << 15;
// Elements per task of the affine map (no reduction: any split gives the same result).
constexpr int64_t kApplyElems = int64_t{1} << 14;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
// prefetch_l2 (simd/kernel.hpp) four lines per step: the lines of [p, p + n) and up to three
// more (a prefetch never faults), at a third of the instructions per line.
template <class T>
inline void prefetch_l2_x4(const T* p, int64_t n) {
  const char* b = reinterpret_cast<const char*>(p);
  for (int64_t o = 0; o < n * int64_t(sizeof(T)); o += 256) {
    __builtin_prefetch(b + o, 0, 2);
    __builtin_prefetch(b + o + 64, 0, 2);
    __builtin_prefetch(b + o + 128, 0, 2);
    __builtin_prefetch(b + o + 192, 0, 2);
  }
}
template <class T>
inline T lesser(T a, T b) {
  return b < a ? b : a;  // a NaN b leaves a
}
template <class T>
inline T greater(T a, T b) {
  return b > a ? b : a;
}

// The block's mean and M2 from the sums S1 = Σ(x − K), S2 = Σ(x − K)² of n values around the
// shift K, a sample of the column, so a large common offset cancels exactly in x − K.
inline void finish(double& mean, double& m2, double k, double n) {
  if (n == 0) {
    mean = 0, m2 = 0;
    return;
  }
  const double s1 = mean, q = m2 - s1 * (s1 / n);
  mean = k + s1 / n;
  m2 = q > 0 ? q : 0;  // rounding can leave −ulp for a constant column
}

// The rows [r, r1) of a task, G at a time while G remain: span(x0, cb, ce) for the group's rows
// x0 + q·d, q < G, over the columns [cb, ce) of [0, cn): one span, or (Fetch::lines) one line of
// columns per span, after prefetching that line of each of the rows `ahead` on. Returns the
// first row left over (fewer than G).
template <Fetch F, int G, class T, class Span>
__attribute__((always_inline)) inline int64_t for_each_group(const T* x, int64_t r, int64_t r1, int64_t n, int64_t d,
                                                             int64_t cn, int64_t ahead, const Span& span) {
  constexpr int64_t kLine = 64 / int64_t(sizeof(T));  // columns per line
  for (; r + G <= r1; r += G) {
    const T* x0 = x + r * d;
    const bool fetch = F != Fetch::none && r + ahead + G <= n;
    if (F == Fetch::rows && fetch) prefetch_l2_x4(x0 + ahead * d, G * d);
    for (int64_t cb = 0; cb < cn; cb += F == Fetch::lines ? kLine : cn) {
      const int64_t ce = F == Fetch::lines ? min64(cn, cb + kLine) : cn;
      if (F == Fetch::lines && fetch)
        for (int q = 0; q < G; ++q) __builtin_prefetch(x0 + (ahead + q) * d + cb, 0, 2);  // into the L2
      span(x0, cb, ce);
    }
  }
  return r;
}

// C-ordered x: task (block b, columns [c0, c0 + cn)) reads the block's rows in memory order,
// accumulating per column into the block's partial vectors G rows at a time (see kGroupRowBytes
// and Fetch): the moments, or min and max alone (G = 1: one row at a time, the order the hardware
// prefetcher follows best; G > 1: one load and store of the running min and max per G rows).
template <class T, bool Omit, bool Moments, bool MinMax, Fetch F = Fetch::none, int G = 8>
void stats_rows(double* partial, const T* x, int64_t n, int64_t d) {
  const int64_t blocks = prep::stats_blocks(n), cblocks = (d + kColBlock - 1) / kColBlock, tasks = blocks * cblocks;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (tasks > 1 && n * d > kSerialBelow)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / cblocks, c0 = (t % cblocks) * kColBlock, cn = min64(kColBlock, d - c0);
    const int64_t r0 = b * kStatsRows, r1 = min64(r0 + kStatsRows, n);
    double* NNDL_RESTRICT cnt = partial + (b * kFields + kCount) * d + c0;
    double* NNDL_RESTRICT s1 = partial + (b * kFields + kMean) * d + c0;
    double* NNDL_RESTRICT s2 = partial + (b * kFields + kM2) * d + c0;
    constexpr int64_t kSpan = lockstep_stride<T>(kColBlock);
    alignas(64) T arrays[4 * kSpan];
    T* NNDL_RESTRICT k = arrays;
    T* NNDL_RESTRICT lo = arrays + kSpan;
    T* NNDL_RESTRICT hi = arrays + 2 * kSpan;
    T* NNDL_RESTRICT z = arrays + 3 * kSpan;  // Σ(x − x): NaN once x held NaN/±inf
    for (int64_t c = 0; c < cn; ++c) {
      T kc = x[r0 * d + c0 + c];
      if (Omit)
        for (int64_t r = r0 + 1; kc != kc && r < r1; ++r) kc = x[r * d + c0 + c];  // the first non-NaN
      k[c] = kc == kc ? kc : T(0);
      lo[c] = T(INFINITY), hi[c] = T(-INFINITY), z[c] = T(0);
      s1[c] = 0, s2[c] = 0, cnt[c] = 0;
    }
    const int64_t ahead = max64(kPrefetchRows, (kPrefetchAhead / (d * int64_t(sizeof(T))) + 7) / 8 * 8);  // rows
    int64_t r = r0;
    if constexpr (!Omit && Moments) {
      r = for_each_group<F, G>(x + c0, r, r1, n, d, cn, ahead, [&](const T* NNDL_RESTRICT x0, int64_t cb, int64_t ce) {
#pragma omp simd
        for (int64_t c = cb; c < ce; ++c) {
          const double kc = double(k[c]);
          double e[G];
          T v[G];
          for (int q = 0; q < G; ++q) v[q] = x0[c + q * d], e[q] = double(v[q]) - kc;
          // Σe by pairs; Σe² as two fused chains (10 operations instead of 16 for G = 8; std::fma:
          // the same bits on every target)
          double q0 = e[0] * e[0], q1 = e[1] * e[1];
          T l = lesser(v[0], v[1]), h = greater(v[0], v[1]);
          double sum = e[0] + e[1];
          if constexpr (G >= 4) {
            q0 = std::fma(e[2], e[2], q0), q1 = std::fma(e[3], e[3], q1);
            sum += e[2] + e[3];
            if (MinMax) {
              l = lesser(l, lesser(v[2], v[3]));
              h = greater(h, greater(v[2], v[3]));
            }
          }
          if constexpr (G == 8) {
            q0 = std::fma(e[6], e[6], std::fma(e[4], e[4], q0)), q1 = std::fma(e[7], e[7], std::fma(e[5], e[5], q1));
            sum += (e[4] + e[5]) + (e[6] + e[7]);
            if (MinMax) {
              l = lesser(l, lesser(lesser(v[4], v[5]), lesser(v[6], v[7])));
              h = greater(h, greater(greater(v[4], v[5]), greater(v[6], v[7])));
            }
          }
          s1[c] += sum;
          s2[c] += q0 + q1;
          if (MinMax) {
            lo[c] = lesser(lo[c], l);
            hi[c] = greater(hi[c], h);
          }
        }
      });
    }
    if constexpr (!Omit && !Moments) {
      // A NaN shows in one flag for the whole block and ±inf in the min or max: the sums of
      // v − v (the mean field's NaN) take a second read only of a block holding either.
      int nan = 0;
      // G rows at a time: the running min and max are loaded and stored once per group
      const auto group = [&](const T* NNDL_RESTRICT x0, int64_t cb, int64_t ce) {
        int any = 0;
#pragma omp simd reduction(| : any)
        for (int64_t c = cb; c < ce; ++c) {
          T v[G];
          for (int q = 0; q < G; ++q) v[q] = x0[c + q * d];
          T l = lesser(v[0], v[1]), h = greater(v[0], v[1]);
          int bad = (v[0] != v[0]) | (v[1] != v[1]);
          for (int q = 2; q < G; q += 2) {
            l = lesser(l, lesser(v[q], v[q + 1]));
            h = greater(h, greater(v[q], v[q + 1]));
            bad |= (v[q] != v[q]) | (v[q + 1] != v[q + 1]);
          }
          any |= bad;
          lo[c] = lesser(lo[c], l);
          hi[c] = greater(hi[c], h);
        }
        nan |= any;
      };
      if constexpr (G > 1) r = for_each_group<F, G>(x + c0, r, r1, n, d, cn, ahead, group);
      for (; r < r1; ++r) {
        const T* NNDL_RESTRICT x0 = x + r * d + c0;
#pragma omp simd reduction(| : nan)
        for (int64_t c = 0; c < cn; ++c) {
          const T v = x0[c];
          lo[c] = lesser(lo[c], v);
          hi[c] = greater(hi[c], v);
          nan |= v != v;
        }
      }
      bool bad = nan != 0;
      for (int64_t c = 0; c < cn; ++c) bad |= lo[c] == T(-INFINITY) || hi[c] == T(INFINITY);
      if (bad)
        for (int64_t q = r0; q < r1; ++q)
          for (int64_t c = 0; c < cn; ++c) z[c] += x[q * d + c0 + c] - x[q * d + c0 + c];
    }
    for (; r < r1; ++r) {
      const T* NNDL_RESTRICT x0 = x + r * d + c0;
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) {
        const T v = x0[c];
        const bool ok = !Omit || v == v;
        if (Moments) {
          const double dv = ok ? double(v) - double(k[c]) : 0.0;
          s1[c] += dv;
          s2[c] += dv * dv;
        } else {
          z[c] += ok ? v - v : T(0);
        }
        if (Omit) cnt[c] += ok ? 1.0 : 0.0;
        if (MinMax) {
          lo[c] = lesser(lo[c], v);
          hi[c] = greater(hi[c], v);
        }
      }
    }
    double* NNDL_RESTRICT mn = partial + (b * kFields + kMin) * d + c0;
    double* NNDL_RESTRICT mx = partial + (b * kFields + kMax) * d + c0;
    for (int64_t c = 0; c < cn; ++c) {
      if (!Omit) cnt[c] = double(r1 - r0);
      if (Moments)
        finish(s1[c], s2[c], double(k[c]), cnt[c]);
      else
        s1[c] = double(z[c]), s2[c] = 0;
      mn[c] = double(lo[c]), mx[c] = double(hi[c]);
    }
  }
}

inline double sum_tree(double* a) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) a[l] += a[l + w];
  return a[0];
}
template <class T>
inline T min_tree(T* a) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) a[l] = lesser(a[l], a[l + w]);
  return a[0];
}
template <class T>
inline T max_tree(T* a) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) a[l] = greater(a[l], a[l + w]);
  return a[0];
}

// F-ordered x (xt: the C-ordered (d, n) view): task (block b, column c) reads one contiguous
// span, element i into lane i mod kLanes.
template <class T, bool Omit, bool Moments, bool MinMax>
void stats_columns(double* partial, const T* xt, int64_t n, int64_t d) {
  const int64_t blocks = prep::stats_blocks(n), tasks = blocks * d;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (tasks > 1 && n * d > kSerialBelow)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / d, c = t % d;
    const int64_t r0 = b * kStatsRows, len = min64(kStatsRows, n - r0);
    const T* NNDL_RESTRICT s = xt + c * n + r0;
    T k = s[0];
    if (Omit)
      for (int64_t i = 1; k != k && i < len; ++i) k = s[i];
    if (k != k) k = T(0);
    const double kd = double(k);
    double a1[kLanes] = {}, a2[kLanes] = {}, an[kLanes] = {};
    T lo[kLanes], hi[kLanes];
    for (int l = 0; l < kLanes; ++l) lo[l] = T(INFINITY), hi[l] = T(-INFINITY);
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const T v = s[i + l];
        const bool ok = !Omit || v == v;
        const double dv = ok ? (Moments ? double(v) - kd : double(v - v)) : 0.0;
        a1[l] += dv;
        a2[l] += Moments ? dv * dv : 0.0;
        if (Omit) an[l] += ok ? 1.0 : 0.0;
        if (MinMax) {
          lo[l] = lesser(lo[l], v);
          hi[l] = greater(hi[l], v);
        }
      }
    }
    for (int l = 0; i + l < len; ++l) {
      const T v = s[i + l];
      const bool ok = !Omit || v == v;
      const double dv = ok ? (Moments ? double(v) - kd : double(v - v)) : 0.0;
      a1[l] += dv;
      a2[l] += Moments ? dv * dv : 0.0;
      if (Omit) an[l] += ok ? 1.0 : 0.0;
      if (MinMax) {
        lo[l] = lesser(lo[l], v);
        hi[l] = greater(hi[l], v);
      }
    }
    double* rec = partial + b * kFields * d + c;
    double mean = sum_tree(a1), m2 = sum_tree(a2);
    const double cnt = Omit ? sum_tree(an) : double(len);
    if (Moments) finish(mean, m2, kd, cnt);
    rec[kCount * d] = cnt, rec[kMean * d] = mean, rec[kM2 * d] = m2;
    rec[kMin * d] = double(min_tree(lo)), rec[kMax * d] = double(max_tree(hi));
  }
}

// y = (x − shift)·scale (+ offset), clipped to [lo, hi] when Clip, over n contiguous elements
// whose coefficient index advances with the element (Row) or stays (a column span).
template <class T, bool Off, bool Clip>
inline T affine1(T v, T s, T a, T o, T lo, T hi) {
  T y = (v - s) * a;
  if (Off) y = y + o;
  if (Clip) y = y < lo ? lo : (y > hi ? hi : y);
  return y;
}

template <class T, bool Off, bool Clip>
void affine(T* y, const T* x, const T* shift, const T* scale, const T* offset, int64_t n, int64_t d, bool f_order,
            double lo_, double hi_) {
  const T lo = T(lo_), hi = T(hi_);
  const int64_t total = n * d;
  if (!f_order) {  // rows of d: coefficient j for element j of each row
    const int64_t rows = max64(1, kApplyElems / max64(d, 1)), tasks = (n + rows - 1) / rows;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (tasks > 1 && total > kSerialBelow)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t r = t * rows; r < min64(n, (t + 1) * rows); ++r) {
        const T* xr = x + r * d;  // y may be x (in place): element j is read before it is written
        T* yr = y + r * d;
#pragma omp simd
        for (int64_t j = 0; j < d; ++j)
          yr[j] = affine1<T, Off, Clip>(xr[j], shift[j], scale[j], Off ? offset[j] : T(0), lo, hi);
      }
    }
    return;
  }
  // columns of n (the (d, n) view): one coefficient per span
  const int64_t pieces = (n + kApplyElems - 1) / kApplyElems, tasks = pieces * d;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (tasks > 1 && total > kSerialBelow)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t c = t / pieces, i0 = (t % pieces) * kApplyElems, i1 = min64(n, i0 + kApplyElems);
    const T s = shift[c], a = scale[c], o = Off ? offset[c] : T(0);
    const T* xc = x + c * n;  // y may be x
    T* yc = y + c * n;
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) yc[i] = affine1<T, Off, Clip>(xc[i], s, a, o, lo, hi);
  }
}

}  // namespace

template <class T>
void column_stats_partial(double* partial, const T* x, int64_t n, int64_t d, bool f_order, bool omit_nan, bool moments,
                          bool minmax) {
  if (n <= 0 || d <= 0) return;
  using Kernel = void (*)(double*, const T*, int64_t, int64_t);
  // [omit_nan][stats]: min and max only, mean and M2 only, or all of them
  static constexpr Kernel kRows[2][3] = {
      {stats_rows<T, false, false, true, Fetch::none, 1>, stats_rows<T, false, true, false>,
       stats_rows<T, false, true, true>},
      {stats_rows<T, true, false, true>, stats_rows<T, true, true, false>, stats_rows<T, true, true, true>}};
  static constexpr Kernel kColumns[2][3] = {
      {stats_columns<T, false, false, true>, stats_columns<T, false, true, false>, stats_columns<T, false, true, true>},
      {stats_columns<T, true, false, true>, stats_columns<T, true, true, false>, stats_columns<T, true, true, true>}};
  // the moments by group size: [2], [4] for float rows of at most 64 values, [8] for rows of
  // kGroupRowBytes on
  static constexpr Kernel kRowsFetch[3][2] = {
      {stats_rows<T, false, true, false, Fetch::rows, 2>, stats_rows<T, false, true, true, Fetch::rows, 2>},
      {stats_rows<T, false, true, false, Fetch::rows, 4>, stats_rows<T, false, true, true, Fetch::rows, 4>},
      {stats_rows<T, false, true, false, Fetch::lines, 8>, stats_rows<T, false, true, true, Fetch::lines, 8>}};
  // min and max alone, float rows, grouped as the moments, [group size as kRowsFetch's][prefetched]
  static constexpr Kernel kMinMaxGroups[3][2] = {
      {stats_rows<T, false, false, true, Fetch::none, 2>, stats_rows<T, false, false, true, Fetch::rows, 2>},
      {stats_rows<T, false, false, true, Fetch::none, 4>, stats_rows<T, false, false, true, Fetch::rows, 4>},
      {stats_rows<T, false, false, true, Fetch::none, 8>, stats_rows<T, false, false, true, Fetch::lines, 8>}};
  const int stats = moments ? (minmax ? 2 : 1) : 0;
  const int64_t row_bytes = d * int64_t(sizeof(T));
  const int group = row_bytes >= kGroupRowBytes ? 2 : (sizeof(T) == 4 && d <= 64 ? 1 : 0);
  if (!moments && !f_order && !omit_nan && sizeof(T) == 4)
    kMinMaxGroups[group][n * row_bytes > (group == 2 ? last_level_cache_bytes() / 2 : kPrefetchAbove)](partial, x, n,
                                                                                                       d);
  else if (moments && !f_order && !omit_nan && n * row_bytes > kPrefetchAbove)
    kRowsFetch[group][stats - 1](partial, x, n, d);
  else
    (f_order ? kColumns : kRows)[omit_nan][stats](partial, x, n, d);
}

void column_stats_fold(double* state, const double* partial, int64_t blocks, int64_t d) {
  const int64_t tasks = (d + kFoldCols - 1) / kFoldCols;
#pragma omp parallel for num_threads(::nndl::num_threads()) \
    schedule(static) if (tasks > 1 && blocks * d > kFoldSerialBelow)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t c0 = t * kFoldCols, c1 = min64(d, c0 + kFoldCols);
    for (int64_t b = 0; b < blocks; ++b) {
      const double* pb = partial + b * kFields * d;
      for (int64_t c = c0; c < c1; ++c) {  // independent columns: their division chains overlap
        const double nb = pb[kCount * d + c];
        if (nb == 0) continue;
        double& na = state[kCount * d + c];
        double& ma = state[kMean * d + c];
        double& qa = state[kM2 * d + c];
        const double mb = pb[kMean * d + c], qb = pb[kM2 * d + c];
        if (na == 0) {
          na = nb, ma = mb, qa = qb;
        } else {
          const double nt = na + nb, delta = mb - ma;
          ma = ma + delta * (nb / nt);
          qa = qa + qb + delta * delta * (na * nb / nt);
          na = nt;
        }
        double& lo = state[kMin * d + c];
        double& hi = state[kMax * d + c];
        const double lb = pb[kMin * d + c], hb = pb[kMax * d + c];
        lo = lb < lo ? lb : lo;
        hi = hb > hi ? hb : hi;
      }
    }
  }
}

template <class T>
void column_affine(T* y, const T* x, const T* shift, const T* scale, const T* offset, int64_t n, int64_t d,
                   bool f_order, bool clip, double lo, double hi) {
  if (n <= 0 || d <= 0) return;
  if (offset)
    clip ? affine<T, true, true>(y, x, shift, scale, offset, n, d, f_order, lo, hi)
         : affine<T, true, false>(y, x, shift, scale, offset, n, d, f_order, lo, hi);
  else
    clip ? affine<T, false, true>(y, x, shift, scale, offset, n, d, f_order, lo, hi)
         : affine<T, false, false>(y, x, shift, scale, offset, n, d, f_order, lo, hi);
}

template void column_stats_partial(double*, const float*, int64_t, int64_t, bool, bool, bool, bool);
template void column_stats_partial(double*, const double*, int64_t, int64_t, bool, bool, bool, bool);
template void column_affine(float*, const float*, const float*, const float*, const float*, int64_t, int64_t, bool,
                            bool, double, double);
template void column_affine(double*, const double*, const double*, const double*, const double*, int64_t, int64_t, bool,
                            bool, double, double);

}  // namespace nndl::NNDL_TARGET
