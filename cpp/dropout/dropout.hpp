// Dropout (1.65) with masks from Philox4x32-10 (rng/philox.hpp). Formulas and the two
// conventions (the chapter's keep probability p, inverted dropout): python/nndl_fast/dropout.py.
//
// Which random word decides element i (of a call with seed and offset): elements go in
// blocks of 64, i = 64·b + 16·w + l (w < 4, l < 16), and
//     u_i = Philox4x32-10(counter = (lo32(j), hi32(j), lo32(offset), hi32(offset)),
//                         key = (lo32(seed), hi32(seed)))[w],     j = 16·b + l
//     kept_i  ⇔  u_i ≤ threshold,   threshold = round(keep·2³²) − 1  (P(kept) = (threshold+1)/2³²)
// so one Philox call (one counter) serves 4 elements 16 apart, and 16 consecutive counters
// serve one block: exactly one AVX-512 vector of counters, two AVX2 vectors, or 16 scalar
// calls — the same bits on every path, for any thread count. Each call of a Dropout layer
// uses its own offset: the streams of two offsets share no counter.
//
// Packed masks: bit i of the mask is element i, 8 per byte, first element in the most
// significant bit — numpy.packbits's default order: np.unpackbits(mask, count=n) is the mask.
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

namespace nndl::dropout {

struct Stream {
  uint64_t seed;
  uint64_t offset;
  uint32_t threshold;  // kept ⇔ u ≤ threshold
};

constexpr int64_t kBlock = 64;
inline int64_t packed_bytes(int64_t n) { return (n + 7) / 8; }

}  // namespace nndl::dropout

NNDL_DECLARE_KERNELS(
    // y[i] = x[i]·(kept_i ? scale : 0); mask (optional, packed_bytes(n) bytes) ← kept bits.
    // y may be x (in place). x, y: n elements of T = float or double.
    template <class T>
    void dropout_forward(T* y, uint8_t* mask, const T* x, int64_t n, const dropout::Stream& s, double scale);

    // mask ← the packed kept bits of n elements (packed_bytes(n) bytes)
    void dropout_mask(uint8_t* mask, int64_t n, const dropout::Stream& s);

    // y[i] = x[i]·(bit i of mask ? scale : 0)   (the backward from a stored mask; y may be x)
    template <class T> void dropout_apply_mask(T* y, const T* x, const uint8_t* mask, int64_t n, double scale);

    // y[a, b, c] = x[a, b, c]·mult[a, c]   x, y: (A, B, C); mult: (A, C)   (variational dropout)
    template <class T> void mul_rows(T* y, const T* x, const T* mult, int64_t A, int64_t B, int64_t C);

    // y[r, j] = x[r, j]·mult[r]   x, y: (rows, len); mult: (rows,)   (channel dropout, NCHW)
    template <class T> void scale_rows(T* y, const T* x, const T* mult, int64_t rows, int64_t len);)
