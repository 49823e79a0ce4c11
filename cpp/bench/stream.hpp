// Memory-bandwidth probes for the benchmark harness (STREAM copy and triad, an in-place
// read-modify-write, the access pattern of an optimizer update, a write-only fill, that of
// the random fills, and a read-only sum, that of the statistics passes).
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

NNDL_DECLARE_KERNELS(void stream_copy(float* out, const float* in, int64_t n);  // out = in
                     void stream_triad(float* out, const float* a, const float* b, float s,
                                       int64_t n);                       // out = a + s·b
                     void stream_inplace(float* x, float s, int64_t n);  // x = s·x + 1
                     void stream_fill(float* out, float s, int64_t n);   // out = s
                     float stream_sum(const float* in, int64_t n);       // Σ in (read-only)
)
