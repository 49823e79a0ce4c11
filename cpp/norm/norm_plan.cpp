#include "norm/norm_plan.hpp"

#include <algorithm>

namespace nndl::norm {
namespace {
// Enough tasks to keep many cores busy and balanced; few enough that the partials stay small.
constexpr int64_t kTargetTasks = 64;
// Below this many rows a row block is not worth its own partial (rows layout).
constexpr int64_t kMinRowsPerBlock = 32;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

BnPlan bn_plan(int64_t outer, int64_t channels, int64_t inner) {
  BnPlan p{};
  p.outer = outer;
  p.channels = channels;
  p.inner = inner;
  int64_t want_row_blocks;
  if (inner > 1) {
    p.chan_block = 1;
    p.chan_blocks = channels;
    want_row_blocks = ceil_div(kTargetTasks, std::max<int64_t>(channels, 1));
  } else {
    p.chan_block = std::min(std::max<int64_t>(channels, 1), kBnChanBlock);
    p.chan_blocks = ceil_div(channels, p.chan_block);
    want_row_blocks = std::min(ceil_div(kTargetTasks, std::max<int64_t>(p.chan_blocks, 1)),
                               ceil_div(outer, kMinRowsPerBlock));
  }
  want_row_blocks = std::max<int64_t>(1, std::min(want_row_blocks, outer));
  p.rows_per_block = std::max<int64_t>(1, ceil_div(outer, want_row_blocks));
  p.row_blocks = outer == 0 ? 0 : ceil_div(outer, p.rows_per_block);
  return p;
}

int64_t bn_workspace_doubles(const BnPlan& p) { return (2 * p.row_blocks + 3) * p.channels; }

LnPlan ln_plan(int64_t rows, int64_t d) {
  LnPlan p{};
  p.rows = rows;
  p.d = d;
  const int64_t want = std::max<int64_t>(1, std::min(rows, kTargetTasks));
  p.rows_per_chunk = std::max<int64_t>(1, ceil_div(rows, want));
  p.chunks = rows == 0 ? 0 : ceil_div(rows, p.rows_per_chunk);
  return p;
}

int64_t ln_workspace_doubles(const LnPlan& p) { return 2 * p.chunks * p.d; }

}  // namespace nndl::norm
