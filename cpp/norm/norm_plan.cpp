#include "norm/norm_plan.hpp"

#include <algorithm>
#include <cstdint>

namespace nndl::norm {
namespace {
// Enough tasks to keep many cores busy and balanced; few enough that the partials stay small.
constexpr int64_t kTargetTasks = 64;
// Below this many rows a row block is not worth its own partial (rows layout).
constexpr int64_t kMinRowsPerBlock = 32;
// Rows layout: inputs with fewer channels than kFoldBelow are seen as wide rows of `fold`
// consecutive rows (a power of two dividing the rows), up to kFoldWidth elements, with at
// least kFoldMinRows wide rows left to split into tasks. Measured, (32, 112, 112, C)
// channels-last float32, 2 threads, fwd+bwd against no fold: C = 3 5.4x, C = 16 1.74x,
// C = 32 1.10x (forward 1.51x). Rows of 512 were 0.85-0.98x of rows of 256 (backward), and
// folding C = 64 made the backward 0.92-0.95x (forward 1.22x), hence 64 stays unfolded.
constexpr int64_t kFoldBelow = 64, kFoldWidth = 256, kFoldMinRows = 64;
// Planes are cut into pieces of at least this many elements (and a multiple of it), when
// they are too few for kTargetTasks: each piece costs a partial and a merge.
constexpr int64_t kMinPiece = int64_t{1} << 14;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t kLine = 64;  // bytes
// Doubles of the coefficient region: 4·C values of the input's type at most 8 bytes each,
// shifted by a phase (< 16 elements) and padded to whole blocks of 16 channels.
int64_t coef_doubles(const BnPlan& p) { return 4 * (p.channels + 2 * 16) + kLine / 8; }
double* align_line(double* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<double*>((a + kLine - 1) / kLine * kLine);
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
  const int64_t want_pieces = std::min(ceil_div(kTargetTasks, std::max<int64_t>(p.row_blocks * p.chan_blocks, 1)),
                                       inner / kMinPiece);
  p.piece_len = want_pieces > 1 ? ceil_div(ceil_div(inner, want_pieces), kMinPiece) * kMinPiece : inner;
  p.pieces = ceil_div(inner, p.piece_len);
  p.blocks = p.row_blocks * p.pieces;
  p.pstride = padded_stride(channels);
  return p;
}

int64_t bn_workspace_doubles(const BnPlan& p) { return kLine / 8 + 2 * p.blocks * p.pstride + coef_doubles(p); }

BnScratch bn_scratch(double* workspace, const BnPlan& p) {
  double* partial = align_line(workspace);
  return {partial, align_line(partial + 2 * p.blocks * p.pstride)};
}

int64_t line_phase(const void* p, int64_t elem_size) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return a % uintptr_t(elem_size) == 0 ? int64_t(a % kLine) / elem_size : 0;
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
  return p;
}

// The double partials, then room for 2·pstride float32 per chunk (see layer_norm.cpp).
int64_t ln_workspace_doubles(const LnPlan& p) { return 3 * p.chunks * p.pstride; }

}  // namespace nndl::norm
