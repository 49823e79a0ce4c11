// Random fills from Philox4x32-10 (rng/philox.hpp): uniform, normal (Box–Muller) and
// truncated normal (inverse CDF). Formulas, conventions and accuracy: python/nndl_fast/random.py.
//
// Which words decide element i (of a call with seed and offset): elements go in blocks of
// one Philox call per lane of 16 consecutive counters,
//     words(j)  = Philox4x32-10(counter = (lo32(j), hi32(j), lo32(offset), hi32(offset)),
//                               key = (lo32(seed), hi32(seed)))      (4 × 32 bits)
// float32: i = 64·b + 16·w + l (w < 4, l < 16) ↔ counter j = 16·b + l;
//   uniform and truncated normal take word w; normal takes words (w & 2, w | 1) as (u1, u2)
//   (u1 = 1 − word·2⁻³², u2 = (word >> 8)·2⁻²⁴) and keeps the cosine for even w, the sine
//   for odd w.
// float64: i = 32·b + 16·h + l (h < 2, l < 16) ↔ counter j = 16·b + l;
//   uniform and truncated normal take words (2h, 2h + 1) (53 or 52 bits); normal takes all
//   four (u1 from words 0, 1; u2 from words 2, 3) and keeps the cosine for h = 0, the sine
//   for h = 1.
// So one block is 16 counters — one AVX-512 vector, two AVX2 vectors or 16 scalar calls — and
// the value of element i depends only on (seed, offset, i): the same bits on every target,
// for any thread count. These are the words dropout's masks use (dropout/dropout.hpp).
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

namespace nndl::rng {

enum class Dist : int { uniform, normal, truncated_normal };

// One fill: x_i = loc + scale·z_i, computed in double and rounded once to the array's dtype;
// float32 normals: z_i in float32 lanes, x_i = fma(float(scale), z_i, float(loc)) in float.
//   uniform:          z = u in [0, 1)
//   normal:           z = √(−2 ln u1)·cos(2π u2)  (or sin)
//   truncated normal: z = clamp(Φ⁻¹(p_lo + u·p_range), z_lo, z_hi), u in (0, 1)
struct Fill {
  uint64_t seed;
  uint64_t offset;
  uint64_t start = 0;  // the array holds elements start, start + 1, … of the stream
  Dist dist;
  double loc, scale;
  double p_lo = 0, p_range = 0, z_lo = 0, z_hi = 0;
};

// Elements per block of 16 counters: 64 float32 or 32 float64.
template <class T>
constexpr int64_t block_elems() {
  return sizeof(T) == 4 ? 64 : 32;
}

}  // namespace nndl::rng

NNDL_DECLARE_KERNELS(
    // y[k] ← x_{f.start + k} of fill f, for k < n. y: n elements of T = float or double.
    template <class T> void random_fill(T* y, int64_t n, const rng::Fill& f);)
