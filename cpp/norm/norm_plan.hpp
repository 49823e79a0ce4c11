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
// A task is (row block, channel block, piece): it reads x[r0:r1, c0:c1, s0:s1] in memory order.
// inner > 1 ("planes"): each contiguous plane x[r, c, :] (or its piece) gives a mean and M2,
//   merged into the task's per-channel partials; channel blocks split the work only when
//   rows are few, and pieces of the planes only when rows x channel blocks are still too
//   few to keep the cores busy (a batch of one image of three channels).
// inner == 1 ("rows"): whole rows (up to kBnChanBlock channels) per task, accumulated
//   across rows into per-channel vectors.
constexpr int64_t kBnChanBlock = 2048;

struct BnPlan {
  // The kernels' view. With few channels (rows layout only), `fold` consecutive rows of the
  // input make one row here: channels = fold x the input's channels, outer = rows / fold,
  // and kernel channel w is the input's channel w mod (channels / fold). The row passes
  // then run at full vector width instead of a few elements per row; the finalizes merge
  // the fold copies of each channel (and write the per-channel coefficients fold times).
  int64_t outer, channels, inner, fold;
  int64_t rows_per_block, row_blocks;  // the reduction axis `outer`, in fixed blocks
  int64_t chan_block, chan_blocks;     // channels per task
  int64_t piece_len, pieces;           // the axis `inner`, in fixed pieces (1 unless few planes)
  int64_t blocks;                      // partial blocks: row_blocks x pieces, row block outer
  // Doubles between partial[b][0] and partial[b][1]: C rounded up to 512, plus 8, so the
  // two vectors a task updates side by side never sit a multiple of 4 KiB apart (which
  // would make every load of one falsely wait on the store to the other: "4K aliasing").
  int64_t pstride;
  // (No member functions: this header is also compiled into every SIMD target's kernels,
  // where an out-of-line inline function would break the one-definition rule.)
};

// n rounded up to 512, plus 8 (see BnPlan::pstride).
int64_t padded_stride(int64_t n);

BnPlan bn_plan(int64_t outer, int64_t channels, int64_t inner);
// The plan of an x of `shape` (ndim >= 2): (N, C, ...) or, channels_last, (N, ..., C).
BnPlan bn_plan_of_shape(const int64_t* shape, int64_t ndim, bool channels_last);

// Bytes per cache line (x86-64 and the common AArch64 cores).
constexpr int64_t kCacheLineBytes = 64;

// How many elements of `elem_size` bytes p lies past the last cache-line boundary (0 when p
// is not a multiple of elem_size). numpy puts a large array 16 bytes past a page boundary, so
// the vectors of a row pass then each straddle two cache lines; per-channel vectors placed
// at the same phase straddle with them, rather than putting a second split load on every step.
int64_t line_phase(const void* p, int64_t elem_size);

// Layer norm sees x as (rows, D), statistics per row over D (the trailing dimensions).
// The backward's dγ, dβ sum over rows: rows are cut into `chunks` fixed blocks, each
// accumulating partial[chunk][2][pstride], merged in chunk order.
// A block of axes in the middle (Keras's axis=1 on (N, C, H, W)) is (outer, D, inner) with
// inner > 1: statistics per (o, i) over the D elements j of stride inner, taken for kLnInnerBlock
// consecutive i at once; a "row" of the plan is then one (o, inner block), rows = outer x
// inner_blocks, and the dγ, dβ chunks cut those rows as they cut the rows of (rows, D).
constexpr int64_t kLnInnerBlock = 64;

struct LnPlan {
  int64_t rows, d;
  int64_t rows_per_chunk, chunks;
  int64_t pstride;                     // as BnPlan::pstride, for D
  int64_t outer, inner, inner_blocks;  // (outer, D, inner); inner == 1: rows = outer, (rows, D)
};

LnPlan ln_plan(int64_t rows, int64_t d);
// The plan of x seen as (outer, D, inner), normalised over D (inner == 1: ln_plan(outer, D)).
LnPlan ln_plan_strided(int64_t outer, int64_t d, int64_t inner);
// Doubles of the backward's workspace; -1 when that count does not fit in int64.
int64_t ln_workspace_doubles(const LnPlan& p);

}  // namespace nndl::norm
