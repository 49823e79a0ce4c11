#include "norm/norm_plan.hpp"

#include "norm/batch_norm_layout.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

namespace nndl::norm {
namespace {
// Enough tasks to keep many cores busy and balanced; few enough that the partials stay small.
constexpr int64_t kTargetTasks = 64;
// Below this many rows a row block is not worth its own partial (rows layout).
constexpr int64_t kMinRowsPerBlock = 32;
// Rows layout: inputs with fewer channels than kFoldBelow are seen as wide rows of `fold`
// consecutive rows (a power of two dividing the rows), up to kFoldWidth elements, with at
// least kFoldMinRows wide rows left to split into tasks: a few channels per row would leave
// the vector units mostly idle (docs/performance-notes.md, "Batch norm", for the values).
constexpr int64_t kFoldBelow = 64, kFoldWidth = 256, kFoldMinRows = 64;
// Planes are cut into pieces of at least this many elements (and a multiple of it), when
// they are too few for kTargetTasks: each piece costs a partial and a merge.
constexpr int64_t kMinPiece = int64_t{1} << 14;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t kLineDoubles = kCacheLineBytes / int64_t(sizeof(double));
double* align_line(double* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<double*>((a + kCacheLineBytes - 1) / kCacheLineBytes * kCacheLineBytes);
}

// a·b + c, or -1 when it does not fit in int64 (a, b, c >= 0).
int64_t mul_add_or_neg(int64_t a, int64_t b, int64_t c) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || __builtin_add_overflow(r, c, &r)) return -1;
  return r;
}
}  // namespace

int64_t padded_stride(int64_t n) { return ceil_div(std::max<int64_t>(n, 1), 512) * 512 + 8; }

BnPlan bn_plan(int64_t outer, int64_t channels, int64_t inner) {
  if (inner == 0) outer = 0, inner = 1;  // an empty spatial extent: nothing to read or write
  BnPlan p{};
  p.fold = 1;
  if (inner == 1 && channels > 0 && channels < kFoldBelow)
    while (2 * p.fold * channels <= kFoldWidth && outer % (2 * p.fold) == 0 && outer / (2 * p.fold) >= kFoldMinRows)
      p.fold *= 2;
  outer /= p.fold, channels *= p.fold;
  p.outer = outer;
  p.channels = channels;
  p.inner = inner;
  const int64_t c = std::max<int64_t>(channels, 1);
  int64_t want_row_blocks;
  if (inner > 1) {
    // Planes: rows first (a task then reads one contiguous slab x[r0:r1, c0:c1, :]), channel
    // blocks only when there are too few rows to keep the cores busy.
    want_row_blocks = std::min(outer, kTargetTasks);
    const int64_t want_chan_blocks = std::min(c, ceil_div(kTargetTasks, std::max<int64_t>(want_row_blocks, 1)));
    p.chan_block = ceil_div(c, want_chan_blocks);
  } else {
    // Rows: whole rows per task when C fits the per-task vectors (contiguous reads), then
    // row blocks of at least kMinRowsPerBlock rows.
    p.chan_block = std::min(c, kBnChanBlock);
    const int64_t chan_blocks = ceil_div(c, p.chan_block);
    want_row_blocks = std::min(ceil_div(kTargetTasks, chan_blocks), ceil_div(outer, kMinRowsPerBlock));
  }
  p.chan_blocks = ceil_div(c, p.chan_block);
  want_row_blocks = std::max<int64_t>(1, std::min(want_row_blocks, outer));
  p.rows_per_block = std::max<int64_t>(1, ceil_div(outer, want_row_blocks));
  p.row_blocks = outer == 0 ? 0 : ceil_div(outer, p.rows_per_block);
  const int64_t want_pieces =
      std::min(ceil_div(kTargetTasks, std::max<int64_t>(p.row_blocks * p.chan_blocks, 1)), inner / kMinPiece);
  p.piece_len = want_pieces > 1 ? ceil_div(ceil_div(inner, want_pieces), kMinPiece) * kMinPiece : inner;
  p.pieces = ceil_div(inner, p.piece_len);
  p.blocks = p.row_blocks * p.pieces;
  p.pstride = padded_stride(channels);
  return p;
}

BnPlan bn_plan_of_shape(const int64_t* shape, int64_t ndim, bool channels_last) {
  int64_t outer = shape[0], channels, inner = 1;
  if (ndim == 2 || !channels_last) {
    channels = shape[1];
    for (int64_t d = 2; d < ndim; ++d) inner *= shape[d];
  } else {
    channels = shape[ndim - 1];
    for (int64_t d = 1; d < ndim - 1; ++d) outer *= shape[d];
  }
  return bn_plan(outer, channels, inner);
}

int64_t bn_coef_elems(int64_t channels) { return kBnPackedCoefs * (channels + kMaxLinePhase + kBnPack); }

int64_t bn_workspace_doubles(const BnPlan& p) {
  // One line of padding before each region; the coefficients' elements are at most a double.
  const int64_t coef = mul_add_or_neg(kBnPackedCoefs, p.channels + kMaxLinePhase + kBnPack, kLineDoubles);
  const int64_t partial = mul_add_or_neg(2 * p.blocks, p.pstride, kLineDoubles);
  return coef < 0 || partial < 0 || partial > std::numeric_limits<int64_t>::max() - coef ? -1 : partial + coef;
}

BnScratch bn_scratch(double* workspace, const BnPlan& p) {
  double* partial = align_line(workspace);
  return {partial, align_line(partial + 2 * p.blocks * p.pstride)};
}

int64_t line_phase(const void* p, int64_t elem_size) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return a % uintptr_t(elem_size) == 0 ? int64_t(a % kCacheLineBytes) / elem_size : 0;
}

LnPlan ln_plan(int64_t rows, int64_t d) {
  LnPlan p{};
  p.rows = rows;
  p.d = d;
  // Every chunk zeroes and merges its own 2·D partials: at least kMinRowsPerBlock rows
  // each keeps that a few per cent of the chunk's own traffic.
  const int64_t want = std::max<int64_t>(1, std::min(kTargetTasks, ceil_div(rows, kMinRowsPerBlock)));
  p.rows_per_chunk = std::max<int64_t>(1, ceil_div(rows, want));
  p.chunks = rows == 0 ? 0 : ceil_div(rows, p.rows_per_chunk);
  p.pstride = padded_stride(d);
  p.outer = rows;
  p.inner = 1;
  p.inner_blocks = 1;
  return p;
}

LnPlan ln_plan_strided(int64_t outer, int64_t d, int64_t inner) {
  if (inner <= 1) return ln_plan(outer, d);
  const int64_t blocks = ceil_div(inner, kLnInnerBlock);
  LnPlan p = ln_plan(outer * blocks, d);
  p.outer = outer;
  p.inner = inner;
  p.inner_blocks = blocks;
  return p;
}

// The double partials, then room for 2·pstride float32 per chunk (see layer_norm.cpp).
int64_t ln_workspace_doubles(const LnPlan& p) { return mul_add_or_neg(3 * p.chunks, p.pstride, 0); }

}  // namespace nndl::norm
