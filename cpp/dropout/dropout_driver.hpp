// Dropout drivers: what one call of nndl_fast.dropout runs, given checked arrays. Compiled
// once (not per SIMD target); each picks the kernels of dropout.hpp through NNDL_DISPATCH.
#pragma once

#include <cstdint>
#include <vector>

#include "dropout/dropout.hpp"

namespace nndl::dropout {

// dx[i] = dy[i]·(kept_i ? scale : 0), the mask from `mask` (packed_bytes(n) bytes) or, when
// mask is null, regenerated from the forward's stream s. dx may be dy (in place).
template <class T>
void backward(T* dx, const T* dy, const uint8_t* mask, int64_t n, const Stream& s, double scale);

// Variational dropout of x: (T, N, F) (ntf false) or (N, T, F) (ntf true), one mask bit per
// (n, f), element n·F + f of the stream:  y[.., n, .., f] = x[.., n, .., f]·(kept ? scale : 0).
// mask: packed_bytes(N·F) bytes, read when `mask_given`, else drawn from s into it (when not
// null) or into scratch. y may be x (in place).
template <class T>
void variational(T* y, uint8_t* mask, bool mask_given, const T* x, int64_t d0, int64_t d1, int64_t F, bool ntf,
                 const Stream& s, double scale);

// Dropout with a mask of `noise` shape broadcast to x's `dims` (Keras's noise_shape: each
// noise[k] is dims[k] or 1; torch's Dropout2d is (N, C, 1, 1)): mask element k (C order over
// `noise`) is element k of the stream, and y = x·(kept ? scale : 0) with the bit of the mask
// element x's element broadcasts from. mask: packed_bytes(prod(noise)) bytes, read when
// mask_given, else drawn from s into it (when not null) or into scratch. y may be x.
template <class T>
void noise_shaped(T* y, uint8_t* mask, bool mask_given, const T* x, const std::vector<int64_t>& dims,
                  const std::vector<int64_t>& noise, const Stream& s, double scale);

}  // namespace nndl::dropout
