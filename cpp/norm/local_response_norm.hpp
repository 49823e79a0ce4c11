// Local response normalisation (1.56), forward and backward, over the channel axis 1 of
// x: (N, C, S) with S = the product of the spatial sizes (1 for a 2-D input), C-contiguous.
// Formulas, argument map and the PyTorch difference: python/nndl_fast/norm/local_response_norm.py.
//
//   d_p = k + α · Σ_{j = p−lo}^{p+hi} x_j²   (j clipped to [0, C))        y_p = x_p · d_p^{−β}
//   chapter (1.56): lo = hi = ⌊n/2⌋, α as given;  torch: lo = ⌊n/2⌋, hi = ⌊(n−1)/2⌋, α/n.
//
// The window sum is a running sum over channels, per spatial position, in double: each
// channel adds the square entering the window and subtracts the one leaving it, so the
// cost per element does not grow with n. Work is cut into tasks of (sample, block of
// kLrnBlock positions); within a block the loop over positions is contiguous and
// vectorised. Every element's arithmetic is independent of the task split and the SIMD
// width, so results are bitwise identical for every thread count and target, and tasks
// can be handed out dynamically (robust to a core shared with another process).
//
// The backward recomputes d from x (nothing is saved by the forward): it reads x and
// dy = ∂L/∂y and writes dx, the same bytes as a backward that would read a saved d.
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

namespace nndl::norm {

constexpr int64_t kLrnBlock = 256;  // spatial positions per task (a few KiB of doubles per row)

// How d^{−β} is computed: exact special cases for common β (sqrt is vectorised, pow is not).
enum class LrnPower : int { general = 0, half = 1, three_quarters = 2, one = 3 };

struct LrnParams {
  int64_t lo, hi;         // window [p − lo, p + hi]
  double k, alpha, beta;  // alpha already divided by n for the torch convention
  LrnPower power;
  int threads = 1;  // backward's team: its scratch holds this many rings
};

// Doubles of scratch lrn_backward needs per OpenMP thread (a ring of window rows of T,
// sized for T = double).
inline int64_t lrn_backward_scratch(const LrnParams& p) { return 2 * (p.lo + p.hi + 2) * kLrnBlock; }

}  // namespace nndl::norm

NNDL_DECLARE_KERNELS(
    // y = x · d^{−β}.  y, x: (n, c, s).
    template <class T>  // float, double
    void lrn_forward(T* y, const T* x, const norm::LrnParams& p, int64_t n, int64_t c, int64_t s);

    // dx_q = dy_q · d_q^{−β} − 2αβ · x_q · Σ_{p = q−hi}^{q+lo} dy_p · y_p / d_p.
    // dx, dy, x: (n, c, s); scratch: lrn_backward_scratch(p) doubles per thread
    // (p.threads threads).
    template <class T>  // float, double
    void lrn_backward(T* dx, double* scratch, const T* dy, const T* x, const norm::LrnParams& p, int64_t n, int64_t c,
                      int64_t s);)
