// Batch-norm kernels (1.43–1.48): plan -> statistics -> finalize -> apply, and the backward's
// reduce -> finalize -> dx. The driver that chains them is batch_norm_driver.cpp; the tasks
// that make every reduction thread-count independent are in norm/norm_plan.hpp, and the
// workspace and coefficient layout in norm/batch_norm_layout.hpp.
//
// Passes over memory (|x| = x's bytes; per-channel arrays and partials are small):
//   training forward   statistics  reads x                              |x|
//                      finalize    partials -> μ, rstd, running stats, apply coefficients
//                      apply       reads x, writes y = (x − μ)·a + β    2·|x|  (3·|x| in all)
//   training backward  reduce      reads x, dy: Σdy, Σdy·(x − μ)        2·|x|
//                      finalize    partials -> dγ, dβ, packed dx coefficients
//                      dx          reads x, dy, writes dx               3·|x|  (5·|x| in all)
//   inference forward  apply only (coefficients from the running statistics)     2·|x|
//   inference backward reduce, writing dx = dy·γ·rstd in the same pass, finalize 3·|x|
// Outputs larger than the last-level cache (y in both layouts, dx in the planes layout) are
// written with streaming stores (norm/stream_store.hpp), so they are not read first.
#include "norm/batch_norm.hpp"

#include <cmath>

#include "norm/batch_norm_layout.hpp"
#include "norm/moments.hpp"
#include "norm/stream_store.hpp"

namespace nndl::NNDL_TARGET {

// --- plan: the fixed tasks of the reduction passes, the units of the element-wise ones ----
namespace {

using norm::BnPlan;
using norm::kBnChanBlock;
using norm::kBnPack;

// Rows layout, statistics: rows per update of the per-channel double accumulators (written
// out in the loop). Within a group x − K, (x − K)² and their pairwise sums are taken in T, so
// most of the arithmetic runs at T's vector width; the group sums are added in double.
constexpr int kRowGroup = 8;
// Rows layout, backward: the passes that read x and dy go one row at a time (reduce_rows
// into per-channel T accumulators that stay in the L1 cache, added to the task's double
// partials every kFlushRows rows, so a T sum holds at most kFlushRows terms): groups of rows
// read in step, with rows of 4 KiB, put 8-12 streams into one set of the 12-way L1 cache.
constexpr int64_t kFlushRows = 16;

// kPrefetch: the reduction passes (statistics; the backward's sums) prefetch the rows or
// plane they read next, a line per line they read (prefetch_l2): read-only passes are held
// back by how many misses a core keeps in flight, and the prefetches add more. The passes
// that write (y, dx) lose with the same prefetches, and do without.

// Elements per unit of the element-wise passes (no reduction: any split gives equal results).
constexpr int64_t kApplyBlock = int64_t{1} << 14;

// The packed A of channel c; B, K, μ follow at kBnPack, 2·kBnPack, 3·kBnPack (see
// norm/batch_norm_layout.hpp: a row's dx pass reads them as one sequential stream, not as
// four arrays whose lines share L1 sets with the rows' own; channel c sits in slot
// j = c + phase, so block boundaries fall where the rows' cache lines begin).
template <class T>
T* packed(T* coef, int64_t c, int64_t phase) {
  const int64_t j = c + phase;
  return coef + (j / kBnPack) * norm::kBnPackedCoefs * kBnPack + j % kBnPack;
}

int64_t numel(const BnPlan& p) { return p.outer * p.channels * p.inner; }

// The rows [r0, r1), channels [c0, c0 + cn) and plane elements [s0, s1) of task t, whose
// partials are block b's (tasks go channel block fastest, then piece, then row block).
struct Task {
  int64_t b, r0, r1, c0, cn, s0, s1;
};
Task task_of(const BnPlan& p, int64_t t) {
  Task k;
  k.b = t / p.chan_blocks;
  const int64_t cb = t % p.chan_blocks, rb = k.b / p.pieces, piece = k.b % p.pieces;
  k.r0 = rb * p.rows_per_block;
  k.r1 = min64(k.r0 + p.rows_per_block, p.outer);
  k.c0 = cb * p.chan_block;
  k.cn = min64(p.chan_block, p.channels - k.c0);
  k.s0 = piece * p.piece_len;
  k.s1 = min64(k.s0 + p.piece_len, p.inner);
  return k;
}

// body(task, partial[b][0] + c0, partial[b][1] + c0) for every task (its two per-channel
// partial vectors), in one parallel loop: the reduction passes below.
template <class Body>
void for_each_task(double* partial, const BnPlan& p, const Body& body) {
  const int64_t tasks = p.blocks * p.chan_blocks;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (tasks > 1 && numel(p) > kSerialBelow)
  for (int64_t t = 0; t < tasks; ++t) {
    const Task k = task_of(p, t);
    body(k, partial + (2 * k.b) * p.pstride + k.c0, partial + (2 * k.b + 1) * p.pstride + k.c0);
  }
}

}  // namespace

// --- statistics: partial[b][0][c] = mean, partial[b][1][c] = M2 ---------------------------
namespace {

// (outer, C, inner > 1): each contiguous plane x[r, c, s0:s1] (in memory order) gives its
// mean and M2, merged (Chan) into the task's per-channel partials.
template <class T>
void stats_planes(double* partial, const T* x, const BnPlan& p) {
  const int64_t C = p.channels, S = p.inner;
  for_each_task(partial, p, [&](const Task& k, double* NNDL_RESTRICT mean, double* NNDL_RESTRICT m2) {
    const int64_t len = k.s1 - k.s0;
    const T* xs = x + k.s0;
    double na = 0;
    for (int64_t r = k.r0; r < k.r1; ++r) {
      for (int64_t c = 0; c < k.cn; ++c) {
        double nc = na, mb, qb;
        // prefetched alongside: the task's next plane (see kPrefetch)
        const T* next = c + 1 < k.cn   ? xs + (r * C + k.c0 + c + 1) * S
                        : r + 1 < k.r1 ? xs + ((r + 1) * C + k.c0) * S
                                       : nullptr;
        row_stats(xs + (r * C + k.c0 + c) * S, len, mb, qb, next);
        if (na == 0) mean[c] = 0, m2[c] = 0;
        chan_merge(nc, mean[c], m2[c], double(len), mb, qb);
      }
      na += double(len);
    }
  });
}

// (outer, C, 1): one pass over the task's rows, accumulating per channel, in double,
// S1 = Σ(x − K) and S2 = Σ(x − K)² around a shift K = the task's first row. K is a sample of
// the channel, so a large common offset (1e4 ± 1) cancels exactly in x − K instead of in
// E[x²] − E[x]²; the task's mean and M2 follow as K + S1/n and S2 − S1²/n, and tasks are
// merged by Chan's formula. Rows go kRowGroup at a time, so the per-channel accumulators are
// read and written once per group.
template <class T>
void stats_rows(double* partial, const T* x, const BnPlan& p) {
  const int64_t C = p.channels;
  for_each_task(partial, p, [&](const Task& k, double* NNDL_RESTRICT mean, double* NNDL_RESTRICT m2) {
    const int64_t cn = k.cn;
    T shift[kBnChanBlock];
    const T* NNDL_RESTRICT first = x + k.r0 * C + k.c0;
    for (int64_t c = 0; c < cn; ++c) shift[c] = first[c], mean[c] = 0, m2[c] = 0;
    int64_t r = k.r0;
    for (; r + kRowGroup <= k.r1; r += kRowGroup) {
      const T* NNDL_RESTRICT x0 = x + r * C + k.c0;
      const bool ahead = r + 2 * kRowGroup <= k.r1;  // prefetch the next group (see kPrefetch)
      for (int64_t cb = 0; cb < cn; cb += kLanes) {
        const int64_t ce = min64(cn, cb + kLanes);
        if (ahead)
          for (int i = kRowGroup; i < 2 * kRowGroup; ++i) prefetch_l2(x0 + i * C + cb, kLanes);
#pragma omp simd
        for (int64_t c = cb; c < ce; ++c) {
          const T k0 = shift[c];
          const T d0 = x0[c] - k0, d1 = x0[c + C] - k0, d2 = x0[c + 2 * C] - k0, d3 = x0[c + 3 * C] - k0;
          const T d4 = x0[c + 4 * C] - k0, d5 = x0[c + 5 * C] - k0, d6 = x0[c + 6 * C] - k0;
          const T d7 = x0[c + 7 * C] - k0;
          mean[c] += double(((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7)));
          m2[c] += double(((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)) + ((d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7)));
        }
      }
    }
    for (; r < k.r1; ++r) {
      const T* NNDL_RESTRICT x0 = x + r * C + k.c0;
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) {
        const double d0 = double(x0[c] - shift[c]);
        mean[c] += d0;
        m2[c] += d0 * d0;
      }
    }
    const double n = double(k.r1 - k.r0);
#pragma omp simd
    for (int64_t c = 0; c < cn; ++c) {
      const double s1 = mean[c];
      mean[c] = shift[c] + s1 / n;
      const double q = m2[c] - s1 * (s1 / n);
      m2[c] = q > 0 ? q : 0;  // rounding can leave −ulp for a constant channel
    }
  });
}

}  // namespace

template <class T>
void bn_stats(double* partial, const T* x, const BnPlan& p) {
  if (p.inner > 1)
    stats_planes(partial, x, p);
  else
    stats_rows(partial, x, p);
}

// --- finalize: partials -> μ, rstd, running statistics, apply coefficients ----------------
namespace {

// The partial blocks' (count n_b, mean m_b, M2_b) merged per channel as
//   mean = Σ_b n_b·m_b / n,   M2 = Σ_b (M2_b + n_b·(m_b − mean)²)
// (Chan's pairwise merge applied to all blocks at once: the deviations are taken from the
// final mean, so it is as stable, and it needs no division per block). Channels go in
// blocks of kFinalizeBlock, the partial blocks in a fixed order within each: the result does
// not depend on the thread count.
constexpr int64_t kFinalizeBlock = 256;

// Elements per channel in partial block b (its row block's rows times its piece's length).
inline double block_count(const BnPlan& p, int64_t b) {
  const int64_t rb = b / p.pieces, s0 = (b % p.pieces) * p.piece_len;
  return double((min64((rb + 1) * p.rows_per_block, p.outer) - rb * p.rows_per_block) *
                (min64(s0 + p.piece_len, p.inner) - s0));
}

// body(c0, cn) for every block [c0, c0 + cn) of the input's channels, in parallel (the
// finalizes: a block's channels merge their partials together, independently of the others).
template <class Body>
void for_each_channel_block(const BnPlan& p, const Body& body) {
  const int64_t C = p.channels / p.fold, blocks = (C + kFinalizeBlock - 1) / kFinalizeBlock;
#pragma omp parallel for num_threads(::nndl::num_threads()) \
    schedule(static) if (blocks > 1 && p.blocks * C > kSerialBelow)
  for (int64_t k = 0; k < blocks; ++k) body(k * kFinalizeBlock, min64(kFinalizeBlock, C - k * kFinalizeBlock));
}

// body(n_b, partial[b][0] + w0, partial[b][1] + w0) with w0 = g·C + c0, for every partial
// block b and fold copy g (see BnPlan::fold) of the input's channels from c0, in that fixed
// order: the order of the merge, so the result does not depend on the thread count.
template <class Body>
void for_each_partial(const double* partial, const BnPlan& p, int64_t c0, const Body& body) {
  const int64_t C = p.channels / p.fold;
  for (int64_t b = 0; b < p.blocks; ++b) {
    const double nb = block_count(p, b);
    for (int64_t g = 0; g < p.fold; ++g)
      body(nb, partial + (2 * b) * p.pstride + g * C + c0, partial + (2 * b + 1) * p.pstride + g * C + c0);
  }
}

}  // namespace

template <class T>
void bn_stats_finalize(T* save_mean, T* save_rstd, T* coef, T* running_mean, T* running_var, const double* partial,
                       const T* gamma, const T* beta, double eps, double factor, bool unbiased, const BnPlan& p) {
  const int64_t W = p.channels, C = W / p.fold;  // the kernels' channels, the input's (see BnPlan)
  const double n = double(p.outer * p.fold * p.inner);
  for_each_channel_block(p, [&](int64_t c0, int64_t cn) {
    double mean[kFinalizeBlock] = {}, m2[kFinalizeBlock] = {};
    for_each_partial(partial, p, c0, [&](double nb, const double* NNDL_RESTRICT mb, const double*) {
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) mean[c] += nb * mb[c];
    });
#pragma omp simd
    for (int64_t c = 0; c < cn; ++c) mean[c] /= n;
    for_each_partial(partial, p, c0, [&](double nb, const double* NNDL_RESTRICT mb, const double* NNDL_RESTRICT qb) {
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) {
        const double d = mb[c] - mean[c];
        m2[c] += qb[c] + nb * (d * d);
      }
    });
    for (int64_t j = 0; j < cn; ++j) {
      const int64_t c = c0 + j;
      const double var = m2[j] / n;  // σ²_B, biased (1.45)
      const double rstd = 1.0 / std::sqrt(var + eps);
      save_mean[c] = T(mean[j]);
      save_rstd[c] = T(rstd);
      for (int64_t w = c; w < W; w += C) {  // every kernel channel of input channel c
        coef[w] = T(mean[j]);               // the μ every pass (and the backward) subtracts
        coef[W + w] = T((gamma ? double(gamma[c]) : 1.0) * rstd);
        coef[2 * W + w] = beta ? beta[c] : T(0);
      }
      if (running_mean) {
        const double batch_var = unbiased ? m2[j] / (n - 1) : var;
        running_mean[c] = T((1.0 - factor) * double(running_mean[c]) + factor * mean[j]);
        running_var[c] = T((1.0 - factor) * double(running_var[c]) + factor * batch_var);
      }
    }
  });
}

// --- apply: y = (x − μ)·a + b --------------------------------------------------------------
namespace {

// With the large-mean inputs that defeat E[x²] − E[x]², x·a + (b − μ·a) would also lose the
// low bits of x·a; subtracting μ first keeps them (the pass is memory-bound either way).

// The element-wise passes (y, dx) in units of about kApplyBlock elements, in one parallel
// region (no reduction: any split gives equal results); kStream: each thread fences its
// streaming stores at the end.
//   for_each_piece: body(plane, s0, s1) for every piece [s0, s1) of every plane (planes layout)
//   for_each_row:   body(r) for every row (rows layout)
template <bool kStream, class Body>
void for_each_piece(const BnPlan& p, const Body& body) {
  const int64_t S = p.inner;
  const int64_t pieces = (S + kApplyBlock - 1) / kApplyBlock, units = p.outer * p.channels * pieces;
#pragma omp parallel num_threads(::nndl::num_threads()) if (units > 1 && numel(p) > kSerialBelow)
  {
#pragma omp for schedule(static)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t s0 = (u % pieces) * kApplyBlock;
      body(u / pieces, s0, min64(s0 + kApplyBlock, S));
    }
    if constexpr (kStream) stream_fence();
  }
}

template <bool kStream, class Body>
void for_each_row(const BnPlan& p, const Body& body) {
  const int64_t C = p.channels;
  const int64_t rows = C >= kApplyBlock ? 1 : kApplyBlock / C;  // rows per unit
  const int64_t units = (p.outer + rows - 1) / rows;
#pragma omp parallel num_threads(::nndl::num_threads()) if (units > 1 && numel(p) > kSerialBelow)
  {
#pragma omp for schedule(static)
    for (int64_t u = 0; u < units; ++u)
      for (int64_t r = u * rows, r1 = min64(r + rows, p.outer); r < r1; ++r) body(r);  // one row at a time (kFlushRows)
    if constexpr (kStream) stream_fence();
  }
}

template <bool kStream, class T>
void apply_planes(T* y, const T* x, const T* coef, const BnPlan& p) {
  const int64_t C = p.channels, S = p.inner;
  for_each_piece<kStream>(p, [&](int64_t plane, int64_t s0, int64_t s1) {
    const int64_t c = plane % C;
    const T mu = coef[c], a = coef[C + c], b = coef[2 * C + c];
    const T* NNDL_RESTRICT xs = x + plane * S + s0;
    write_out<kStream>(y + plane * S + s0, s1 - s0, [&](T* NNDL_RESTRICT o, int64_t i0, int64_t len) {
      const T* NNDL_RESTRICT xp = xs + i0;
#pragma omp simd
      for (int64_t s = 0; s < len; ++s) o[s] = (xp[s] - mu) * a + b;
    });
  });
}

template <bool kStream, class T>
void apply_rows(T* y, const T* x, const T* coef, const BnPlan& p) {
  const int64_t C = p.channels;
  const T* NNDL_RESTRICT mu = coef;
  const T* NNDL_RESTRICT a = coef + C;
  const T* NNDL_RESTRICT b = coef + 2 * C;
  for_each_row<kStream>(p, [&](int64_t r) {
    const T* NNDL_RESTRICT xr = x + r * C;
    write_out<kStream>(y + r * C, C, [&](T* NNDL_RESTRICT o, int64_t i0, int64_t len) {
#pragma omp simd
      for (int64_t c = i0; c < i0 + len; ++c) o[c - i0] = (xr[c] - mu[c]) * a[c] + b[c];
    });
  });
}

// Whether an element-wise pass writing p's whole output streams it (see norm/stream_store.hpp).
// `arrays`: how many of p's arrays the pass touches, if the footprint decides (the apply
// pass: x and y, which evict each other from the L3), else 1: the output's size (the dx
// pass; the rows layout never streams dx).
template <class T>
bool streams(const BnPlan& p, int64_t arrays) {
  return stream_output(arrays * numel(p) * int64_t(sizeof(T)));
}

}  // namespace

template <class T>
void bn_apply(T* y, const T* x, const T* coef, const BnPlan& p) {
  const bool st = streams<T>(p, 2);
  if (p.inner > 1)
    st ? apply_planes<true>(y, x, coef, p) : apply_planes<false>(y, x, coef, p);
  else
    st ? apply_rows<true>(y, x, coef, p) : apply_rows<false>(y, x, coef, p);
}

// --- backward reduce: partial[b][0][c] = Σdy, partial[b][1][c] = Σdy·(x − μ) -------------
namespace {

template <class T, bool kDx>
void reduce_planes(double* partial, T* dx, const T* dy, const T* x, const T* mean, const T* scale, const BnPlan& p) {
  const int64_t C = p.channels, S = p.inner;
  for_each_task(partial, p, [&](const Task& k, double* NNDL_RESTRICT out_dy, double* NNDL_RESTRICT out_dx) {
    const int64_t len = k.s1 - k.s0;
    for (int64_t c = 0; c < k.cn; ++c) out_dy[c] = 0, out_dx[c] = 0;
    for (int64_t r = k.r0; r < k.r1; ++r)
      for (int64_t c = 0; c < k.cn; ++c) {
        const int64_t off = (r * C + k.c0 + c) * S + k.s0;
        const T* NNDL_RESTRICT xs = x + off;
        const T* NNDL_RESTRICT gs = dy + off;
        T* NNDL_RESTRICT ds = kDx ? dx + off : nullptr;
        const double mu = double(mean[k.c0 + c]);
        const T a = kDx ? scale[k.c0 + c] : T(0);
        double sdy[kLanes] = {}, sdx[kLanes] = {};
        int64_t i = 0;
        for (; i + kLanes <= len; i += kLanes)
#pragma omp simd
          for (int l = 0; l < kLanes; ++l) {
            const double g = double(gs[i + l]);
            sdy[l] += g;
            sdx[l] += g * (double(xs[i + l]) - mu);
            if constexpr (kDx) ds[i + l] = gs[i + l] * a;
          }
        for (int l = 0; i + l < len; ++l) {
          const double g = double(gs[i + l]);
          sdy[l] += g;
          sdx[l] += g * (double(xs[i + l]) - mu);
          if constexpr (kDx) ds[i + l] = gs[i + l] * a;
        }
        out_dy[c] += sum_lanes(sdy);
        out_dx[c] += sum_lanes(sdx);
      }
  });
}

template <class T, bool kDx>
void reduce_rows(double* partial, T* dx, const T* dy, const T* x, const T* mean, const T* scale, const BnPlan& p) {
  const int64_t C = p.channels;
  for_each_task(partial, p, [&](const Task& k, double* NNDL_RESTRICT sdy, double* NNDL_RESTRICT sdx) {
    const int64_t c0 = k.c0, cn = k.cn;
    const T* NNDL_RESTRICT mu = mean + c0;
    const T* NNDL_RESTRICT a = scale ? scale + c0 : nullptr;
    constexpr int64_t kSpan = lockstep_stride<T>(kBnChanBlock);
    alignas(64) T acc[2 * kSpan];
    T* NNDL_RESTRICT ady = acc;
    T* NNDL_RESTRICT adx = acc + kSpan;
    for (int64_t c = 0; c < cn; ++c) sdy[c] = 0, sdx[c] = 0, ady[c] = 0, adx[c] = 0;
    for (int64_t r = k.r0; r < k.r1; ++r) {
      const T* NNDL_RESTRICT xr = x + r * C + c0;
      const T* NNDL_RESTRICT gr = dy + r * C + c0;
      const bool ahead = r + 1 < k.r1;  // prefetch the next row alongside (see kPrefetch)
      for (int64_t cb = 0; cb < cn; cb += kLanes) {
        const int64_t ce = min64(cn, cb + kLanes);
        if (ahead) prefetch_l2(xr + C + cb, kLanes), prefetch_l2(gr + C + cb, kLanes);
#pragma omp simd
        for (int64_t c = cb; c < ce; ++c) {
          ady[c] += gr[c];
          adx[c] = madd(gr[c], xr[c] - mu[c], adx[c]);
        }
      }
      if constexpr (kDx) {
        T* NNDL_RESTRICT dr = dx + r * C + c0;
#pragma omp simd
        for (int64_t c = 0; c < cn; ++c) dr[c] = gr[c] * a[c];
      }
      if ((r + 1 - k.r0) % kFlushRows == 0 || r + 1 == k.r1) {
#pragma omp simd
        for (int64_t c = 0; c < cn; ++c) {
          sdy[c] += double(ady[c]), sdx[c] += double(adx[c]);
          ady[c] = T(0), adx[c] = T(0);
        }
      }
    }
  });
}

}  // namespace

template <class T>
void bn_backward_reduce(double* partial, T* dx, const T* dy, const T* x, const T* mean, const T* scale,
                        const BnPlan& p) {
  if (p.inner > 1)
    dx ? reduce_planes<T, true>(partial, dx, dy, x, mean, scale, p)
       : reduce_planes<T, false>(partial, dx, dy, x, mean, scale, p);
  else
    dx ? reduce_rows<T, true>(partial, dx, dy, x, mean, scale, p)
       : reduce_rows<T, false>(partial, dx, dy, x, mean, scale, p);
}

// --- backward finalize: dγ, dβ and the packed dx coefficients -----------------------------

template <class T>
void bn_backward_finalize(T* dgamma, T* dbeta, T* coef, const double* partial, const T* gamma, const T* mean,
                          const T* rstd, const BnPlan& p, int64_t phase) {
  const int64_t W = p.channels, C = W / p.fold;  // as bn_stats_finalize
  const double m = double(p.outer * p.fold * p.inner);
  for_each_channel_block(p, [&](int64_t c0, int64_t cn) {
    double sdy[kFinalizeBlock] = {}, sdx[kFinalizeBlock] = {};
    for_each_partial(partial, p, c0, [&](double, const double* NNDL_RESTRICT pdy, const double* NNDL_RESTRICT pdx) {
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) sdy[c] += pdy[c], sdx[c] += pdx[c];
    });
    for (int64_t j = 0; j < cn; ++j) {
      const int64_t c = c0 + j;
      const double is = double(rstd[c]);
      if (dbeta) dbeta[c] = T(sdy[j]);         // ∂L/∂β = Σ dy
      if (dgamma) dgamma[c] = T(sdx[j] * is);  // ∂L/∂γ = Σ dy·x̂
      if (coef) {                              // packed (see kBnPack), for every kernel channel of input channel c
        const double A = (gamma ? double(gamma[c]) : 1.0) * is;
        for (int64_t w = c; w < W; w += C) {
          T* q = packed(coef, w, phase);
          q[0] = T(A);                                  // direct path
          q[kBnPack] = T(-A * is * is * (sdx[j] / m));  // through σ²_B
          q[2 * kBnPack] = T(-A * (sdy[j] / m));        // through μ_B
          q[3 * kBnPack] = mean[c];
        }
      }
    }
  });
}

// --- dx = (x − μ)·B + dy·A + K ------------------------------------------------------------
namespace {

template <bool kStream, class T>
void dx_planes(T* dx, const T* dy, const T* x, const T* coef, const BnPlan& p, int64_t phase) {
  const int64_t C = p.channels, S = p.inner;
  for_each_piece<kStream>(p, [&](int64_t plane, int64_t s0, int64_t s1) {
    const T* q = packed(coef, plane % C, phase);
    const T A = q[0], B = q[kBnPack], K = q[2 * kBnPack], mu = q[3 * kBnPack];
    const T* NNDL_RESTRICT xs = x + plane * S + s0;
    const T* NNDL_RESTRICT gs = dy + plane * S + s0;
    write_out<kStream>(dx + plane * S + s0, s1 - s0, [&](T* NNDL_RESTRICT o, int64_t i0, int64_t len) {
      const T* NNDL_RESTRICT xp = xs + i0;
      const T* NNDL_RESTRICT gp = gs + i0;
#pragma omp simd
      for (int64_t s = 0; s < len; ++s) o[s] = (xp[s] - mu) * B + gp[s] * A + K;
    });
  });
}

// Ordinary stores even for large outputs: streaming dx costs more than its read-for-ownership
// saves at the shapes measured (see streams()).
template <class T>
void dx_rows(T* dx, const T* dy, const T* x, const T* coef, const BnPlan& p, int64_t phase) {
  const int64_t C = p.channels;
  // dx[c] for the channels [c0, c1), whose coefficients sit in slots l0, l0 + 1, ... of the
  // packed block at q
  const auto block = [&](T* NNDL_RESTRICT dr, const T* NNDL_RESTRICT xr, const T* NNDL_RESTRICT gr,
                         const T* NNDL_RESTRICT q, int64_t c0, int64_t c1, int64_t l0) {
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t l = l0 + (c - c0);
      dr[c] = (xr[c] - q[3 * kBnPack + l]) * q[kBnPack + l] + gr[c] * q[l] + q[2 * kBnPack + l];
    }
  };
  for_each_row<false>(p, [&](int64_t r) {
    const T* NNDL_RESTRICT xr = x + r * C;
    const T* NNDL_RESTRICT gr = dy + r * C;
    T* NNDL_RESTRICT dr = dx + r * C;
    for (int64_t j0 = 0; j0 < C + phase; j0 += kBnPack) {  // slots j = c + phase, a block at a time
      const T* NNDL_RESTRICT q = coef + j0 * norm::kBnPackedCoefs;
      const int64_t c0 = j0 - phase, c1 = c0 + kBnPack;
      if (c0 >= 0 && c1 <= C)
        block(dr, xr, gr, q, c0, c0 + kBnPack, 0);  // the whole block: a constant trip count
      else
        block(dr, xr, gr, q, max64(c0, 0), min64(c1, C), max64(c0, 0) - c0);
    }
  });
}

}  // namespace

template <class T>
void bn_backward_dx(T* dx, const T* dy, const T* x, const T* coef, const BnPlan& p, int64_t phase) {
  const bool st = streams<T>(p, 1);
  if (p.inner > 1)
    st ? dx_planes<true>(dx, dy, x, coef, p, phase) : dx_planes<false>(dx, dy, x, coef, p, phase);
  else
    dx_rows(dx, dy, x, coef, p, phase);
}

#define NNDL_BN_INSTANTIATE(T)                                                                                         \
  template void bn_stats(double*, const T*, const BnPlan&);                                                            \
  template void bn_stats_finalize(T*, T*, T*, T*, T*, const double*, const T*, const T*, double, double, bool,         \
                                  const BnPlan&);                                                                      \
  template void bn_apply(T*, const T*, const T*, const BnPlan&);                                                       \
  template void bn_backward_reduce(double*, T*, const T*, const T*, const T*, const T*, const BnPlan&);                \
  template void bn_backward_finalize(T*, T*, T*, const double*, const T*, const T*, const T*, const BnPlan&, int64_t); \
  template void bn_backward_dx(T*, const T*, const T*, const T*, const BnPlan&, int64_t);
NNDL_BN_INSTANTIATE(float)
NNDL_BN_INSTANTIATE(double)
#undef NNDL_BN_INSTANTIATE

}  // namespace nndl::NNDL_TARGET
