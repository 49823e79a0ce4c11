// Weight normalisation (1.55): W_i = g_i · v_i / ‖v_i‖, one row i per output unit.
// Formulas, argument map and the PyTorch difference: python/nndl_fast/norm/weight_norm.py.
//
// v, W, dy = ∂L/∂W, dv: (rows, cols), C-contiguous, row i = output unit i (torch dim=0);
// g, dg: (rows,).
//
// ‖v_i‖² and dy_i · v_i are accumulated in double, in 16 fixed lanes combined in a
// fixed order, so the result is bitwise identical for every thread count and SIMD target.
// Per-row coefficients are computed in double and rounded once to T; the elementwise
// products are in T (widening every element to double costs time in cache, for ≤ 1 ulp).
// A row longer than kWeightNormChunk is cut into fixed chunks whose partial sums are
// combined in chunk order; shorter rows are done by one thread in one sweep (the second
// touch of the row hits the cache), so W costs one read of v and one write.
// Tasks (rows, or row chunks) are independent, so they are handed out dynamically: on a
// machine where another process holds a core, the other thread takes over the remaining
// rows instead of waiting, and the results do not depend on who computed what.
// A zero row (‖v_i‖ = 0) gives NaN in W_i, dg_i and dv_i (0/0, as torch does).
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

namespace nndl::norm {
constexpr int64_t kWeightNormChunk = int64_t{1} << 15;  // columns per task of a long row
}  // namespace nndl::norm

NNDL_DECLARE_KERNELS(
    // W = g · v / ‖v‖ per row. `partial` is scratch of rows·ceil(cols / kWeightNormChunk)
    // doubles (unused when cols <= kWeightNormChunk, may then be null).
    template <class T>  // float, double
    void weight_norm_forward(T* w, double* partial, const T* v, const T* g, int64_t rows, int64_t cols);

    // dg_i = dy_i · v̂_i,  dv_i = (g_i/‖v_i‖)(dy_i − dg_i · v̂_i),  v̂_i = v_i/‖v_i‖.
    // `partial` is scratch of 2·rows·ceil(cols / kWeightNormChunk) doubles (null if one chunk).
    template <class T>  // float, double
    void weight_norm_backward(T* dv, T* dg, double* partial, const T* dy, const T* v, const T* g, int64_t rows,
                              int64_t cols);)
