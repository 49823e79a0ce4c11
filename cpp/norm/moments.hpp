// Helpers shared by the normalisation kernel files (included by kernel files only; every
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

constexpr int kLanes = 16;
// Elements whose two passes of block_stats still hit L1: the statistics read memory once.
constexpr int64_t kStatsBlock = 4096;
// Below this many elements a kernel runs on the calling thread (no parallel region).
constexpr int64_t kSerialBelow = int64_t{1} << 15;

inline double sum_lanes(double* acc) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

// Mean and M2 = Σ(x − mean)² of n >= 1 contiguous values, in double: two passes over a
// block small enough to stay in cache (never the cancelling E[x²] − E[x]²).
template <class T>
inline void block_stats(const T* NNDL_RESTRICT x, int64_t n, double& mean, double& m2) {
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) acc[l] += double(x[i + l]);
  for (int l = 0; i + l < n; ++l) acc[l] += double(x[i + l]);
  const double mu = sum_lanes(acc) / double(n);
  double q[kLanes] = {};
  i = 0;
  for (; i + kLanes <= n; i += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const double d = double(x[i + l]) - mu;
      q[l] += d * d;
    }
  for (int l = 0; i + l < n; ++l) {
    const double d = double(x[i + l]) - mu;
    q[l] += d * d;
  }
  mean = mu;
  m2 = sum_lanes(q);
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
template <class T>
inline void row_stats(const T* NNDL_RESTRICT x, int64_t n, double& mean, double& m2) {
  double na = 0, ma = 0, qa = 0;
  for (int64_t s = 0; s < n; s += kStatsBlock) {
    const int64_t len = n - s < kStatsBlock ? n - s : kStatsBlock;
    double mb, qb;
    block_stats(x + s, len, mb, qb);
    chan_merge(na, ma, qa, double(len), mb, qb);
  }
  mean = ma;
  m2 = qa;
}

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

}  // namespace
}  // namespace nndl::NNDL_TARGET
