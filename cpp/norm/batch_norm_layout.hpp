// The batch-norm workspace and the layout of the per-channel coefficients in it: the one
// place that sizes them (norm_plan.cpp), fills them (batch_norm_driver.cpp, the finalizes)
// and reads them (the apply and dx passes of batch_norm.cpp).
//
// workspace (float64, caller's or fresh):
//   [pad to a line] partial[p.blocks][2][p.pstride]   doubles: the reduction passes' partials
//   [pad to a line] coefficients, of the input's type T:
//     apply   (forward): μ[W], a[W] = γ·rstd, β[W], from slot line_phase(y)     (3·W values)
//     packed  (training backward): blocks of kBnPack channels, each block holding
//             A[kBnPack], B[kBnPack], K[kBnPack], μ[kBnPack] side by side; channel w sits
//             in slot w + line_phase(dx)                                         (4·(W + phase) values,
//                                                                                 whole blocks)
//     scale   (inference backward): γ·rstd[W], from slot 0
// W = p.channels, the kernels' channels (the input's channels times p.fold).
// Constants only here, and functions defined once in norm_plan.cpp: this header is also
// compiled into every SIMD target's kernels (see simd/dispatch.hpp).
#pragma once

#include <cstdint>

#include "norm/norm_plan.hpp"

namespace nndl::norm {

// Channels per block of the packed dx coefficients: a block's four 16-float vectors are one
// 256-byte sequential stream that the dx pass reads alongside the rows.
constexpr int64_t kBnPack = 16;
// Coefficients per channel of the packed dx layout (A, B, K, μ) -- the most any layout needs.
constexpr int64_t kBnPackedCoefs = 4;
// The largest line phase in elements (float32, the smallest element type).
constexpr int64_t kMaxLinePhase = kCacheLineBytes / int64_t(sizeof(float));

// Elements of type T (at most 8 bytes) the coefficient region holds: every layout above, at
// any phase, padded to whole packed blocks: kBnPackedCoefs·(channels + kMaxLinePhase + kBnPack).
int64_t bn_coef_elems(int64_t channels);

// Doubles of the whole workspace: both regions, each from a cache-line boundary; -1 when
// that count does not fit in int64.
int64_t bn_workspace_doubles(const BnPlan& p);

// The workspace's two regions, each starting on a cache-line boundary.
struct BnScratch {
  double* partial;
  void* coef;
};
BnScratch bn_scratch(double* workspace, const BnPlan& p);

}  // namespace nndl::norm
