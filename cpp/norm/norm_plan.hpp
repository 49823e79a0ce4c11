// How batch-norm and layer-norm work is cut into fixed tasks (compiled once, not per SIMD
// target: see simd/dispatch.hpp). Every size here depends on the array's shape only, never
// on the thread count, so per-task partial reductions -- merged afterwards in task order --
// give bitwise-identical results for any number of threads.
#pragma once

#include <cstdint>

namespace nndl::norm {

// Batch norm sees x as (outer, C, inner), statistics per channel c over outer x inner:
//   (N, C)              -> (N, C, 1)
//   (N, C, spatial...)  -> (N, C, prod(spatial))
//   (N, spatial..., C)  -> (N * prod(spatial), C, 1)     channels-last
// inner > 1 ("planes"): a task is (row block, channel); it walks contiguous planes of
//   `inner` elements.
// inner == 1 ("rows"): a task is (row block, channel block of <= kBnChanBlock channels);
//   it accumulates across rows into per-channel vectors.
constexpr int64_t kBnChanBlock = 256;

struct BnPlan {
  int64_t outer, channels, inner;
  int64_t rows_per_block, row_blocks;  // the reduction axis `outer`, in fixed blocks
  int64_t chan_block, chan_blocks;     // channels per task (1 for planes)
  // (No member functions: this header is also compiled into every SIMD target's kernels,
  // where an out-of-line inline function would break the one-definition rule.)
};

BnPlan bn_plan(int64_t outer, int64_t channels, int64_t inner);

// Doubles of scratch: partial[row_blocks][2][C], then coefficients coef[3][C].
int64_t bn_workspace_doubles(const BnPlan& p);

// Layer norm sees x as (rows, D), statistics per row over D (the trailing dimensions).
// The backward's dγ, dβ sum over rows: rows are cut into `chunks` fixed blocks, each
// accumulating partial[chunk][2][D], merged in chunk order.
struct LnPlan {
  int64_t rows, d;
  int64_t rows_per_chunk, chunks;
};

LnPlan ln_plan(int64_t rows, int64_t d);
int64_t ln_workspace_doubles(const LnPlan& p);

}  // namespace nndl::norm
