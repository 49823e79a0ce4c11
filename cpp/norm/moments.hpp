// Helpers and constants shared by the normalisation kernel files (included by kernel files only; every
// name has internal linkage, so each SIMD target keeps its own copy).
//
// Sums use kLanes independent accumulators, lane l taking elements i ≡ l (mod kLanes),
// combined by a fixed pairwise tree: the order of every addition is set by the code, not
// by the vector width or the thread count, and the lanes hide the add latency.
#pragma once

#include <cstdint>

#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {
namespace {

// Fixed (not the vector width): the summation order never depends on the SIMD target.
constexpr int kLanes = 16;
// Elements per block_stats call; blocks are merged by Chan's formula.
constexpr int64_t kStatsBlock = 4096;
// Below this many elements every norm kernel (batch, layer, weight, local response) runs on
// the calling thread: a parallel region's fork and join cost more than the work it splits.
constexpr int64_t kSerialBelow = int64_t{1} << 15;

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Terms per lane a row kernel may sum in the input's type T before adding the lane to its
// double total: most of the work leaves double precision (half the vector width, plus
// conversions) while the T rounding stays at a few ulp of the partial sum.
constexpr int64_t kLaneRun = 64;

inline double sum_lanes(double* acc) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

// Mean and M2 = Σ(x − mean)² of n >= 1 contiguous values, in double, in one pass: sums of
// d = x − K and d² around the shift K = x[0], a sample of the data, so a large common
// offset cancels exactly in x − K (never the cancelling E[x²] − E[x]²); then
// mean = K + Σd/n and M2 = Σd² − (Σd)²/n.
// next: null, or the same span of the row the caller reads next, prefetched alongside.
template <class T>
inline void block_stats(const T* NNDL_RESTRICT x, int64_t n, double& mean, double& m2, const T* next) {
  const double k = double(x[0]);
  double s1[kLanes] = {}, s2[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    if (next) prefetch_l2(next + i, kLanes);
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const double d = double(x[i + l]) - k;
      s1[l] += d;
      s2[l] += d * d;
    }
  }
  for (int l = 0; i + l < n; ++l) {
    const double d = double(x[i + l]) - k;
    s1[l] += d;
    s2[l] += d * d;
  }
  const double a = sum_lanes(s1), q = sum_lanes(s2) - a * (a / double(n));
  mean = k + a / double(n);
  m2 = q > 0 ? q : 0;  // rounding can leave −ulp for constant data
}

// Chan, Golub & LeVeque: (na, ma, qa) ← merge of itself with a block (nb, mb, qb).
inline void chan_merge(double& na, double& ma, double& qa, double nb, double mb, double qb) {
  if (nb == 0) return;
  if (na == 0) {
    na = nb, ma = mb, qa = qb;
    return;
  }
  const double n = na + nb;
  const double d = mb - ma;
  ma = ma + d * (nb / n);
  qa = qa + qb + d * d * (na * nb / n);
  na = n;
}

// Mean and M2 of n contiguous values of any length, block by block (one pass over memory).
// next: as for block_stats (a row kernel passes its next row: see prefetch_l2).
template <class T>
inline void row_stats(const T* NNDL_RESTRICT x, int64_t n, double& mean, double& m2, const T* next = nullptr) {
  double na = 0, ma = 0, qa = 0;
  for (int64_t s = 0; s < n; s += kStatsBlock) {
    const int64_t len = n - s < kStatsBlock ? n - s : kStatsBlock;
    double mb, qb;
    block_stats(x + s, len, mb, qb, next ? next + s : nullptr);
    chan_merge(na, ma, qa, double(len), mb, qb);
  }
  mean = ma;
  m2 = qa;
}

}  // namespace
}  // namespace nndl::NNDL_TARGET
