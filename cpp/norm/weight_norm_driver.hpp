// Weight normalisation drivers: what one call of nndl_fast.norm.weight_norm runs, given
// checked arrays. Compiled once (not per SIMD target): each sizes the per-chunk partial sums
// that long rows need and calls the kernel through NNDL_DISPATCH.
// v, w, dy, dv: (rows, cols); g, dg: (rows,).
#pragma once

#include <cstdint>

#include "norm/weight_norm.hpp"

namespace nndl::norm {

// w = g · v / ‖v‖ per row (1.55).
template <class T>
void weight_norm_forward(T* w, const T* v, const T* g, int64_t rows, int64_t cols);

// dg_i = dy_i · v̂_i,  dv_i = (g_i/‖v_i‖)(dy_i − dg_i · v̂_i).
template <class T>
void weight_norm_backward(T* dv, T* dg, const T* dy, const T* v, const T* g, int64_t rows, int64_t cols);

}  // namespace nndl::norm
