// Does any element of a list of tensors hold NaN or ±Inf? (the optimizers' non-finite guard)
#pragma once

#include <cstdint>

#include "parallel.hpp"
#include "simd/dispatch.hpp"

NNDL_DECLARE_KERNELS(template <class T>  // float, double
                     bool any_nonfinite(const T* const* x, const ChunkView& plan);)
