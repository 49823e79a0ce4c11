// Local response normalisation drivers: what one call of nndl_fast.norm.local_response_norm
// runs, given checked arrays. Compiled once (not per SIMD target): each turns the window
// and β into the kernels' LrnParams, sizes the backward's scratch and calls the kernel
// through NNDL_DISPATCH. x, y, dy, dx: (n, c, s), s = the product of the spatial sizes.
#pragma once

#include <cstdint>

#include "norm/local_response_norm.hpp"

namespace nndl::norm {

// The hyper-parameters as Python resolved them: window [p − lo, p + hi], α already divided
// by n for the torch convention. A negative half-width throws std::invalid_argument.
struct LrnWindow {
  int64_t lo, hi;
  double k, alpha, beta;
};

// y = x · d^−β   (see local_response_norm.hpp)
template <class T>
void local_response_norm_forward(T* y, const T* x, const LrnWindow& w, int64_t n, int64_t c, int64_t s);

// dx from dy and the forward's x (d recomputed from x).
template <class T>
void local_response_norm_backward(T* dx, const T* dy, const T* x, const LrnWindow& w, int64_t n, int64_t c, int64_t s);

}  // namespace nndl::norm
