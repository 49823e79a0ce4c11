// Augmentation kernels. A warp works one output row at a time: the source offsets and the
// bilinear weights of a segment of the row are computed once (in double, then float) and
// reused for every channel, so the per-channel loop is four loads, a blend and a store.
// Rows are the parallel unit: every output element is written once, by one thread, from
// the same arithmetic whatever the thread count.
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "augment/augment.hpp"
#include "rng/philox.hpp"
#include "rng/random_block.hpp"
#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using augment::GatherMap;
using augment::Geometry;
using augment::Interp;
using augment::kFar;
using augment::Padding;

// Pixels per row segment: the segment's offsets and weights (10 KiB) stay on the stack.
constexpr int64_t kSeg = 256;
// Output elements below which a call stays on one thread.
constexpr int64_t kParallelElems = int64_t{1} << 15;
// Output bytes per gather task: whole small images, blocks of rows of large ones.
constexpr int64_t kTaskBytes = int64_t{1} << 14;

// Round half to even, exact for |x| < 2^51 (no SSE4.1 round instruction on baseline x86-64).
inline double round_even(double x) {
  constexpr double shifter = 6755399441055744.0;  // 1.5·2^52
  return (x + shifter) - shifter;
}
inline double floor_d(double x) {
  const double r = round_even(x);
  return r - (r > x ? 1.0 : 0.0);  // a select of constants: the loop stays branch-free
}
inline double clamp_far(double x) { return x < -kFar ? -kFar : (x > kFar ? kFar : x); }

// An index outside [0, n) under edge or reflect padding (constant padding never calls it).
inline int64_t remap(int64_t i, int64_t n, Padding pad) {
  if (i >= 0 && i < n) return i;
  if (pad == Padding::edge) return i < 0 ? 0 : n - 1;
  const int64_t period = 2 * n;
  int64_t r = i % period;
  if (r < 0) r += period;
  return r < n ? r : period - 1 - r;
}

// A float value to the image's type: uint8 rounds half to even and saturates.
template <class T>
inline T to_pixel(float v) {
  if constexpr (sizeof(T) == 1) {
    v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
    constexpr float shifter = 12582912.0f;  // 1.5·2^23
    return T(int32_t((v + shifter) - shifter));
  } else {
    return v;
  }
}

// One row segment: every pixel's weights and, for pixels whose corners are all inside
// the image (an interval of the segment: the source point moves monotonically along a row),
// the offset of its first corner (row·w + column; the others are +1, +w, +w + 1). Pixels
// outside the interval keep per-corner offsets and, for constant padding, validity bits.
struct Segment {
  int32_t ix[kSeg], iy[kSeg];  // corner 0 (bilinear: ⌊x_s⌋, ⌊y_s⌋; nearest: rint)
  int32_t base[kSeg];          // interior pixels: iy·w + ix
  uint8_t inner[kSeg];
  float wt[4][kSeg];
  int64_t off[4][kSeg];  // border pixels only
  uint8_t valid[kSeg];   // border pixels, constant padding: bit q ⇔ corner q is inside
  int64_t ka, kb;        // the interior interval [ka, kb) (empty: ka = kb)
};

template <Padding P>
inline void corner(int64_t cx, int64_t cy, const Geometry& g, int64_t& off, uint8_t& valid, int bit) {
  if constexpr (P == Padding::constant) {
    const bool in = cx >= 0 && cx < g.w && cy >= 0 && cy < g.h;
    valid |= uint8_t(in) << bit;
    off = in ? cy * g.w + cx : 0;
  } else {
    off = remap(cy, g.h, P) * g.w + remap(cx, g.w, P);
  }
}

// Bilinear: corners (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1) with weights
// (1−fy)(1−fx), (1−fy)fx, fy(1−fx), fy·fx; nearest: corner 0 only, weight 1.
template <Interp I, Padding P>
inline void plan_segment(Segment& s, const double* m, const Geometry& g, int64_t y, int64_t x0, int64_t len) {
  const double yd = double(y);
  const double bx = m[1] * yd + m[2], by = m[4] * yd + m[5];
  const double m0 = m[0], m3 = m[3];
  constexpr int32_t extent = I == Interp::bilinear ? 1 : 0;  // corners beyond corner 0
  const int32_t wlim = int32_t(g.w) - extent, hlim = int32_t(g.h) - extent, w32 = int32_t(g.w);
  const double xd0 = double(x0);
  const int n = int(len);  // ≤ kSeg: 32-bit lanes convert to double on every target
#pragma omp simd
  for (int k = 0; k < n; ++k) {
    const double xd = xd0 + double(k);  // exact: integers below 2^31
    const double xs = clamp_far(m0 * xd + bx), ys = clamp_far(m3 * xd + by);
    int32_t ix, iy;
    if constexpr (I == Interp::nearest) {
      ix = int32_t(round_even(xs));
      iy = int32_t(round_even(ys));
    } else {
      const double fx0 = floor_d(xs), fy0 = floor_d(ys);
      const float fx = float(xs - fx0), fy = float(ys - fy0);
      ix = int32_t(fx0);
      iy = int32_t(fy0);
      s.wt[0][k] = (1.0f - fy) * (1.0f - fx);
      s.wt[1][k] = (1.0f - fy) * fx;
      s.wt[2][k] = fy * (1.0f - fx);
      s.wt[3][k] = fy * fx;
    }
    const bool in = (ix >= 0) & (ix < wlim) & (iy >= 0) & (iy < hlim);  // no branches: vectorises
    s.ix[k] = ix;
    s.iy[k] = iy;
    s.inner[k] = uint8_t(in);
    s.base[k] = (in ? iy : 0) * w32 + (in ? ix : 0);
  }
  int64_t ka = len, kb = 0, count = 0;
  for (int64_t k = 0; k < len; ++k)
    if (s.inner[k]) {
      ka = k < ka ? k : ka;
      kb = k + 1;
      ++count;
    }
  if (count != kb - ka) {  // not one interval (never for an affine map; kept for safety)
    for (int64_t k = 0; k < len; ++k) s.inner[k] = 0;
    ka = kb = 0;
  }
  if (count == 0) ka = kb = 0;
  s.ka = ka;
  s.kb = kb;
  for (int64_t k = 0; k < len; ++k) {
    if (k == ka && kb > ka) k = kb;
    if (k >= len) break;
    uint8_t valid = 0;
    const int64_t ix = s.ix[k], iy = s.iy[k];
    corner<P>(ix, iy, g, s.off[0][k], valid, 0);
    if constexpr (I == Interp::bilinear) {
      corner<P>(ix + 1, iy, g, s.off[1][k], valid, 1);
      corner<P>(ix, iy + 1, g, s.off[2][k], valid, 2);
      corner<P>(ix + 1, iy + 1, g, s.off[3][k], valid, 3);
    }
    s.valid[k] = valid;
  }
}

// One output value of a border pixel k, channel base `src` (stride `ps` per pixel).
template <class T, Interp I, Padding P>
inline T sample(const Segment& s, int64_t k, const T* src, int64_t ps, float fill) {
  if constexpr (I == Interp::nearest) {
    if constexpr (P == Padding::constant)
      if (!(s.valid[k] & 1)) return to_pixel<T>(fill);
    return src[s.off[0][k] * ps];
  } else {
    float v[4];
    for (int q = 0; q < 4; ++q) {
      v[q] = float(src[s.off[q][k] * ps]);
      if constexpr (P == Padding::constant) v[q] = (s.valid[k] >> q) & 1 ? v[q] : fill;
    }
    return to_pixel<T>(((s.wt[0][k] * v[0] + s.wt[1][k] * v[1]) + s.wt[2][k] * v[2]) + s.wt[3][k] * v[3]);
  }
}

// The same for an interior pixel: no padding rule, corners at base + {0, 1, w, w + 1}.
template <class T, Interp I>
inline T sample_inner(const Segment& s, int64_t k, const T* src, int64_t ps, int64_t row) {
  const int64_t o = int64_t(s.base[k]) * ps;
  if constexpr (I == Interp::nearest) {
    return src[o];
  } else {
    const float a = float(src[o]), b = float(src[o + ps]), c = float(src[o + row]), d = float(src[o + row + ps]);
    return to_pixel<T>(((s.wt[0][k] * a + s.wt[1][k] * b) + s.wt[2][k] * c) + s.wt[3][k] * d);
  }
}

// Interior bilinear pixels [ka, kb) of a uint8 channel plane (NCHW): each pair of
// horizontal neighbours is one 32-bit gather at base (row y0) and base + row (row y0 + 1),
// scale 1, the two low bytes kept; the arithmetic is sample_inner's, operation for
// operation, so the bits are the scalar path's. A gather reads 2 bytes past the pair: lanes
// where that could leave the plane (its last pixels) go through the scalar path.
inline void inner_u8_bilinear(uint8_t* NNDL_RESTRICT o, const uint8_t* NNDL_RESTRICT src, const Segment& s, int64_t ka,
                              int64_t kb, int64_t row, int64_t plane) {
  int64_t k = ka;
#if defined(__AVX512F__)
  const __m512i lim = _mm512_set1_epi32(int32_t(plane - row - 3)), ff = _mm512_set1_epi32(0xFF);
  const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f), shifter = _mm512_set1_ps(12582912.0f);
  for (; k + 16 <= kb; k += 16) {
    const __m512i base = _mm512_loadu_si512(s.base + k);
    if (_mm512_cmplt_epi32_mask(base, lim) != 0xFFFF) break;
    const __m512i top_row = _mm512_i32gather_epi32(base, src, 1);
    const __m512i bottom_row = _mm512_i32gather_epi32(base, src + row, 1);
    const __m512 a = _mm512_cvtepi32_ps(_mm512_and_si512(top_row, ff));
    const __m512 b = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(top_row, 8), ff));
    const __m512 c = _mm512_cvtepi32_ps(_mm512_and_si512(bottom_row, ff));
    const __m512 d = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(bottom_row, 8), ff));
    __m512 v =
        _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(s.wt[0] + k), a), _mm512_mul_ps(_mm512_loadu_ps(s.wt[1] + k), b));
    v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_loadu_ps(s.wt[2] + k), c));
    v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_loadu_ps(s.wt[3] + k), d));
    v = _mm512_min_ps(_mm512_max_ps(v, zero), top);  // to_pixel's clamp (no NaN: finite inputs)
    v = _mm512_sub_ps(_mm512_add_ps(v, shifter), shifter);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + k), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
  }
#elif defined(__AVX2__)
  const __m256i lim = _mm256_set1_epi32(int32_t(plane - row - 3)), ff = _mm256_set1_epi32(0xFF);
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f), shifter = _mm256_set1_ps(12582912.0f);
  for (; k + 8 <= kb; k += 8) {
    const __m256i base = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.base + k));
    if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(lim, base))) != 0xFF) break;
    const __m256i top_row = _mm256_i32gather_epi32(reinterpret_cast<const int*>(src), base, 1);
    const __m256i bottom_row = _mm256_i32gather_epi32(reinterpret_cast<const int*>(src + row), base, 1);
    const __m256 a = _mm256_cvtepi32_ps(_mm256_and_si256(top_row, ff));
    const __m256 b = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(top_row, 8), ff));
    const __m256 c = _mm256_cvtepi32_ps(_mm256_and_si256(bottom_row, ff));
    const __m256 d = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(bottom_row, 8), ff));
    __m256 v =
        _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(s.wt[0] + k), a), _mm256_mul_ps(_mm256_loadu_ps(s.wt[1] + k), b));
    v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_loadu_ps(s.wt[2] + k), c));
    v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_loadu_ps(s.wt[3] + k), d));
    v = _mm256_min_ps(_mm256_max_ps(v, zero), top);
    v = _mm256_sub_ps(_mm256_add_ps(v, shifter), shifter);
    const __m256i q = _mm256_cvttps_epi32(v);  // 0..255: pack 32 → 16 → 8 bits without saturation effects
    const __m128i q16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(o + k), _mm_packus_epi16(q16, q16));
  }
#endif
  (void)plane;
  for (; k < kb; ++k) o[k] = sample_inner<uint8_t, Interp::bilinear>(s, k, src, 1, row);
}

template <class T, Interp I, Padding P>
void warp_row(T* out, const T* img, const double* m, const float* fill, const Geometry& g, int64_t y) {
  Segment s;
  const int64_t plane = g.oh * g.ow, in_plane = g.h * g.w;
  for (int64_t x0 = 0; x0 < g.ow; x0 += kSeg) {
    const int64_t len = g.ow - x0 < kSeg ? g.ow - x0 : kSeg;
    plan_segment<I, P>(s, m, g, y, x0, len);
    const int64_t ka = s.ka, kb = s.kb;
    if (g.channels_last) {
      const int64_t C = g.c, row = g.w * C;
      T* o = out + (y * g.ow + x0) * C;
      for (int64_t k = 0; k < ka; ++k)
        for (int64_t c = 0; c < C; ++c) o[k * C + c] = sample<T, I, P>(s, k, img + c, C, fill[c]);
      for (int64_t k = ka; k < kb; ++k)
        for (int64_t c = 0; c < C; ++c) o[k * C + c] = sample_inner<T, I>(s, k, img + c, C, row);
      for (int64_t k = kb > ka ? kb : ka; k < len; ++k)
        for (int64_t c = 0; c < C; ++c) o[k * C + c] = sample<T, I, P>(s, k, img + c, C, fill[c]);
    } else {
      const int64_t row = g.w;
      for (int64_t c = 0; c < g.c; ++c) {
        T* NNDL_RESTRICT o = out + c * plane + y * g.ow + x0;
        const T* NNDL_RESTRICT src = img + c * in_plane;
        for (int64_t k = 0; k < ka; ++k) o[k] = sample<T, I, P>(s, k, src, 1, fill[c]);
        if constexpr (sizeof(T) == 1 && I == Interp::bilinear) {
          inner_u8_bilinear(o, src, s, ka, kb, row, in_plane);
        } else {
#pragma omp simd
          for (int64_t k = ka; k < kb; ++k) o[k] = sample_inner<T, I>(s, k, src, 1, row);
        }
        for (int64_t k = kb > ka ? kb : ka; k < len; ++k) o[k] = sample<T, I, P>(s, k, src, 1, fill[c]);
      }
    }
  }
}

// d[0:n) = s[0:n) for sizeof(U) <= n <= 2·sizeof(U): the first and the last U, overlapping.
template <class U>
inline void copy_both_ends(uint8_t* NNDL_RESTRICT d, const uint8_t* NNDL_RESTRICT s, int64_t n) {
  U a, b;
  std::memcpy(&a, s, sizeof(U));
  std::memcpy(&b, s + n - int64_t(sizeof(U)), sizeof(U));
  std::memcpy(d, &a, sizeof(U));
  std::memcpy(d + n - int64_t(sizeof(U)), &b, sizeof(U));
}

// Copies n bytes inline: rows of a small image are tens of bytes, where a memcpy call costs
// as much as the copy. Vectors, the last one overlapping (no masked stores: slow on Zen 4).
inline void copy_bytes(uint8_t* NNDL_RESTRICT d, const uint8_t* NNDL_RESTRICT s, int64_t n) {
#if defined(__AVX2__)
  if (n >= 32) {
    const int64_t last = n - 32;
    for (int64_t k = 0; k < last; k += 32)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + k),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + k)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + last),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + last)));
    return;
  }
#endif
#if !defined(__SSE2__)
  std::memcpy(d, s, size_t(n));
#else
  if (n >= 16) {
    const int64_t last = n - 16;
    for (int64_t k = 0; k < last; k += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + k), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + last), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + last)));
  } else if (n >= 8) {
    copy_both_ends<uint64_t>(d, s, n);
  } else if (n >= 4) {
    copy_both_ends<uint32_t>(d, s, n);
  } else if (n >= 2) {
    copy_both_ends<uint16_t>(d, s, n);
  } else if (n == 1) {
    d[0] = s[0];
  }
#endif
}

// Small copies inline, large ones by memcpy (which aligns its stores).
inline void copy_row(uint8_t* NNDL_RESTRICT d, const uint8_t* NNDL_RESTRICT s, int64_t n) {
  if (n <= 256)
    copy_bytes(d, s, n);
  else
    std::memcpy(d, s, size_t(n));
}

// Reverses the pixel order of a row segment: dst pixel k ← src pixel n − 1 − k, pixels of
// B bytes. A vector holds p whole pixels and one permutation reverses them, from index
// tables built once per call:
// - B = 4·b (float32 pixels, 4-channel uint8): 32-bit lanes, out lane j ← in lane (p − 1 −
//   j/b)·b + j mod b;
// - B = 1: a byte reversal of the vector (in-lane shuffle, then the 128-bit lanes reversed);
// - B = 3 (RGB uint8): 4 pixels are 3 whole dwords, so groups of 4 pixels are placed in
//   reverse order one per 128-bit lane (dword permute), reversed within it (byte shuffle),
//   and packed back (dword permute);
// - other B ≤ 16: 16-byte shuffles of p = ⌊16/B⌋ pixels.
// Vectors are loaded ending at their last source pixel and stored from their first output
// pixel (both inside the segment while a vector's bytes remain); then B = 1 and B = 3 redo
// the segment's last vector overlapping, 32-bit lanes (and, on AVX-512, other B) use masks,
// and what is left goes bytewise (as on baseline). B = 1 rows over 64 bytes take the
// compiler's loop, which was faster there.
enum RevKind : int { kRevBytes = 0, kRev16 = 1, kRevDwords = 2, kRevB1 = 3, kRevB3 = 4 };

struct Reverse {
  int kind;
  int64_t b;                       // pixel bytes
  int64_t p;                       // kRev16 and kRevDwords: pixels per vector
  alignas(64) int32_t idx32[16];   // kRevDwords; kRevB3: the spreading permute
  alignas(64) int32_t idx32e[16];  // kRevDwords, loads ending at the vector's last pixel
  alignas(64) int32_t pack32[16];  // kRevB3: the packing permute
  alignas(16) uint8_t idx8[16];    // kRev16; kRevB3: the in-lane reversal of 4 pixels
  alignas(16) uint8_t rev8[16];    // kRevB1: 15, 14, …, 0
  alignas(16) uint8_t idx8b[16];   // AVX2, kRevB3 and kRevB1 fall back to kRev16 with this table
  alignas(16) uint8_t rev8b3[16];  // AVX2, kRevB3: 5 pixels from the first 15 of 16 bytes
};

inline void rev16_table(uint8_t* t, int64_t b, int64_t p, bool ending) {
  const int64_t q = p * b;  // bytes used; AVX2 loads end at the vector's last pixel
  for (int64_t j = 0; j < 16; ++j) t[j] = uint8_t((j < q ? (p - 1 - j / b) * b + j % b : 0) + (ending ? 16 - q : 0));
}

inline Reverse reverse_plan(int64_t pixel_bytes) {
  Reverse r{};
  r.b = pixel_bytes;
#if defined(__AVX2__)
#if defined(__AVX512F__)
  constexpr int64_t dwords = 16;
#else
  constexpr int64_t dwords = 8;
#endif
  for (int j = 0; j < 16; ++j) r.rev8[j] = uint8_t(15 - j);
  if (pixel_bytes == 1 || pixel_bytes == 3) {
    // 32- and 16-byte vectors without masks on every target (masked stores are slow on some).
    r.kind = pixel_bytes == 1 ? kRevB1 : kRevB3;
    r.p = 16 / pixel_bytes;
    rev16_table(r.idx8b, pixel_bytes, r.p, true);
    rev16_table(r.rev8b3, pixel_bytes, r.p, false);
    for (int64_t l = 0; l < 2; ++l)  // 8 pixels in the last 24 of 32 bytes: dwords 2..7
      for (int64_t t = 0; t < 3; ++t) {
        r.idx32[4 * l + t] = int32_t(2 + 3 * (1 - l) + t);  // lane l ← group 1 − l
        r.pack32[3 * l + t] = int32_t(4 * l + t);
      }
    for (int64_t j = 0; j < 16; ++j) r.idx8[j] = uint8_t(j < 12 ? (3 - j / 3) * 3 + j % 3 : 0x80);
  } else if (pixel_bytes % 4 == 0 && pixel_bytes / 4 <= dwords) {
    const int64_t bu = pixel_bytes / 4, q = dwords / bu * bu;
    r.kind = kRevDwords;
    r.p = dwords / bu;
    for (int64_t j = 0; j < 16; ++j) {
      r.idx32[j] = int32_t(j < q ? (r.p - 1 - j / bu) * bu + j % bu : 0);
      r.idx32e[j] = r.idx32[j] + int32_t(dwords - q);  // loads ending at the vector's last pixel
    }
  } else if (pixel_bytes <= 16) {
    r.kind = kRev16;
    r.p = 16 / pixel_bytes;
#if defined(__AVX512F__)
    rev16_table(r.idx8, pixel_bytes, r.p, false);
#else
    rev16_table(r.idx8, pixel_bytes, r.p, true);
#endif
  }
#endif
  return r;
}

inline void reverse_bytes(uint8_t* NNDL_RESTRICT dst, const uint8_t* NNDL_RESTRICT src, int64_t n, int64_t b) {
  if (b == 1) {
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) dst[k] = src[n - 1 - k];
    return;
  }
  for (int64_t k = 0; k < n; ++k)
    for (int64_t c = 0; c < b; ++c) dst[k * b + c] = src[(n - 1 - k) * b + c];
}

inline const void* at(const uint8_t* p, int64_t off) {  // p + off, which may precede p's array (masked-off lanes)
  return reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + uintptr_t(off));
}

#if defined(__AVX512F__)
inline __mmask64 bits64(int64_t lo, int64_t hi) {  // bits [lo, hi)
  return _bzhi_u64(~uint64_t{0}, unsigned(hi)) & ~_bzhi_u64(~uint64_t{0}, unsigned(lo));
}
#endif

// dst[k·B, (k + 1)·B) ← src[(n − 1 − k)·B, (n − k)·B), k < n. Reads and writes only those bytes.
inline void reverse_pixels(uint8_t* NNDL_RESTRICT dst, const uint8_t* NNDL_RESTRICT src, int64_t n, const Reverse& r) {
  const int64_t b = r.b;
  int64_t k0 = 0;
#if defined(__AVX512F__)
  if (r.kind == kRevDwords) {
    const int64_t p = r.p, bu = b / 4;
    const __m512i ixe = _mm512_load_si512(r.idx32e), ix = _mm512_load_si512(r.idx32);
    // Loads end at the vector's last source pixel, stores start at its first output pixel:
    // both inside the segment while 64 bytes of it remain. Then masked vectors.
    for (; (n - k0) * b >= 64; k0 += p) {
      const __m512i v = _mm512_loadu_si512(src + (n - k0) * b - 64);
      _mm512_storeu_si512(dst + k0 * b, _mm512_permutexvar_epi32(ixe, v));
    }
    for (; k0 < n; k0 += p) {
      const int64_t m = n - k0 < p ? n - k0 : p;
      const __mmask16 lm = __mmask16(bits64((p - m) * bu, p * bu));
      const __m512i v = _mm512_maskz_loadu_epi32(lm, at(src, (n - k0 - p) * b));
      _mm512_mask_storeu_epi32(dst + k0 * b, __mmask16(bits64(0, m * bu)), _mm512_permutexvar_epi32(ix, v));
    }
    return;
  }
  if (r.kind == kRev16) {
    const int64_t p = r.p;
    const __m128i ix = _mm_load_si128(reinterpret_cast<const __m128i*>(r.idx8));
    for (; k0 < n; k0 += p) {
      const int64_t m = n - k0 < p ? n - k0 : p;
      const __m128i v = _mm_maskz_loadu_epi8(__mmask16(bits64((p - m) * b, p * b)), at(src, (n - k0 - p) * b));
      _mm_mask_storeu_epi8(dst + k0 * b, __mmask16(bits64(0, m * b)), _mm_shuffle_epi8(v, ix));
    }
    return;
  }
#endif
#if defined(__AVX2__)
#if !defined(__AVX512F__)
  if (r.kind == kRevDwords) {
    // The tail: 32-bit lane masks, maskload/maskstore touch the active lanes only.
    const int64_t p = r.p, bu = b / 4;
    const __m256i ix = _mm256_load_si256(reinterpret_cast<const __m256i*>(r.idx32));
    const __m256i ixe = _mm256_load_si256(reinterpret_cast<const __m256i*>(r.idx32e));
    for (; (n - k0) * b >= 32; k0 += p) {  // unmasked while 32 bytes remain, as on AVX-512
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + (n - k0) * b - 32));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k0 * b), _mm256_permutevar8x32_epi32(v, ixe));
    }
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (; k0 < n; k0 += p) {
      const int64_t m = n - k0 < p ? n - k0 : p;
      const __m256i lo = _mm256_set1_epi32(int32_t((p - m) * bu - 1)), hi = _mm256_set1_epi32(int32_t(p * bu));
      const __m256i lm = _mm256_and_si256(_mm256_cmpgt_epi32(iota, lo), _mm256_cmpgt_epi32(hi, iota));
      const __m256i sm = _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(m * bu)), iota);
      const __m256i v = _mm256_maskload_epi32(static_cast<const int*>(at(src, (n - k0 - p) * b)), lm);
      _mm256_maskstore_epi32(reinterpret_cast<int*>(dst + k0 * b), sm, _mm256_permutevar8x32_epi32(v, ix));
    }
    return;
  }
#endif
  const __m128i* idx16 = reinterpret_cast<const __m128i*>(r.kind == kRev16 ? r.idx8 : r.idx8b);

  if (r.kind == kRevB1 && n >= 16 && n <= 64) {  // longer rows: the compiler's loop (below) was faster
    // Whole vectors, then one more ending at the segment's end (overlapping the last one).
    const __m128i ix16 = _mm_load_si128(reinterpret_cast<const __m128i*>(r.rev8));
    if (n >= 32) {
      const __m256i ix = _mm256_broadcastsi128_si256(ix16);
      auto rev32 = [&](int64_t k) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + n - k - 32));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k),
                            _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, ix), 0x4E));
      };
      for (; n - k0 >= 32; k0 += 32) rev32(k0);
      if (k0 < n) rev32(n - 32);
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                       _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + n - 16)), ix16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + n - 16),
                       _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)), ix16));
    }
    return;
  }
  if (r.kind == kRevB3) {
    const __m256i spread = _mm256_load_si256(reinterpret_cast<const __m256i*>(r.idx32));
    const __m256i pack = _mm256_load_si256(reinterpret_cast<const __m256i*>(r.pack32));
    const __m256i ix = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(r.idx8)));
    for (; (n - k0) * 3 >= 32; k0 += 8) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + (n - k0) * 3 - 32));
      const __m256i w = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(v, spread), ix);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k0 * 3), _mm256_permutevar8x32_epi32(w, pack));
    }
  }
  if (r.kind == kRevB3 || r.kind == kRev16) {
    // 16-byte loads end at the vector's last source pixel, stores start at its first output
    // pixel: both stay inside the segment while 16 bytes of it remain.
    const int64_t p = 16 / b;
    const __m128i ix = _mm_load_si128(idx16);
    for (; (n - k0) * b >= 16; k0 += p) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (n - k0) * b - 16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k0 * b), _mm_shuffle_epi8(v, ix));
    }
    if (r.kind == kRevB3 && k0 < n && n >= 6) {
      // The last 5 pixels again, from the segment's first 16 bytes (a table without the
      // ending shift), stored as exactly their 15 bytes.
      const __m128i v = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)),
                                         _mm_load_si128(reinterpret_cast<const __m128i*>(r.rev8b3)));
      uint8_t* d = dst + (n - 5) * 3;
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d), v);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 7), _mm_srli_si128(v, 7));
      return;
    }
  }
#endif
  reverse_bytes(dst + k0 * b, src, n - k0, b);
}

// Output rows [y0, y1) of one image: out row y ← input row sy0 + sdy·y, columns sx0 + sdx·x.
// The columns whose source is inside are one copy (memcpy, or reverse_pixels for sdx = −1);
// constant padding copies the rest from fill_row (the output row of fill values: NCHW, C rows
// of ow; channels-last, ow pixels).
template <class T>
void gather_rows(T* out, const T* img, const GatherMap& mp, const T* fill_row, const Geometry& g, Padding pad,
                 const Reverse& rev, int64_t y0, int64_t y1) {
  const bool cl = g.channels_last;
  const int64_t P = cl ? g.c : 1, planes = cl ? 1 : g.c;  // elements per pixel, planes per image
  const int64_t orow = g.ow * P, irow = g.w * P;
  const int64_t es = sizeof(T);
  // Columns whose source is inside: sx0 + sdx·x in [0, w).
  int64_t xa, xb;
  if (mp.sdx > 0) {
    xa = -mp.sx0;
    xb = g.w - mp.sx0;
  } else {
    xa = mp.sx0 - g.w + 1;
    xb = mp.sx0 + 1;
  }
  xa = xa < 0 ? 0 : (xa > g.ow ? g.ow : xa);
  xb = xb < xa ? xa : (xb > g.ow ? g.ow : xb);
  const int64_t n = xb - xa, sxa = mp.sx0 + mp.sdx * xa;     // sxa: the source of column xa
  const int64_t s_first = mp.sdx > 0 ? sxa : sxa - (n - 1);  // the segment's leftmost source column
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t pl = 0; pl < planes; ++pl) {
      T* op = out + pl * g.oh * g.ow;
      const T* ip = img + pl * g.h * g.w;
      const T* fr = fill_row + pl * g.ow;
      T* o = op + y * orow;
      int64_t sy = mp.sy0 + mp.sdy * y;
      if (!(sy >= 0 && sy < g.h)) {
        if (pad == Padding::constant) {
          copy_row(reinterpret_cast<uint8_t*>(o), reinterpret_cast<const uint8_t*>(fr), orow * es);
          continue;
        }
        sy = remap(sy, g.h, pad);
      }
      const T* s = ip + sy * irow;
      if (pad == Padding::constant && (xa > 0 || xb < g.ow)) {
        if (orow * es <= 256) {  // a short row: all fill, then the copy over it (no tiny pieces)
          copy_bytes(reinterpret_cast<uint8_t*>(o), reinterpret_cast<const uint8_t*>(fr), orow * es);
        } else {
          copy_row(reinterpret_cast<uint8_t*>(o), reinterpret_cast<const uint8_t*>(fr), xa * P * es);
          copy_row(reinterpret_cast<uint8_t*>(o + xb * P), reinterpret_cast<const uint8_t*>(fr + xb * P),
                   (g.ow - xb) * P * es);
        }
      } else if (pad != Padding::constant) {
        for (int64_t x = xa == 0 ? xb : 0; x < g.ow; x = (x + 1 == xa) ? xb : x + 1) {
          const T* sp = s + remap(mp.sx0 + mp.sdx * x, g.w, pad) * P;
          for (int64_t c = 0; c < P; ++c) o[x * P + c] = sp[c];
        }
      }
      if (n <= 0) continue;
      if (mp.sdx > 0)
        copy_row(reinterpret_cast<uint8_t*>(o + xa * P), reinterpret_cast<const uint8_t*>(s + sxa * P), n * P * es);
      else
        reverse_pixels(reinterpret_cast<uint8_t*>(o + xa * P), reinterpret_cast<const uint8_t*>(s + s_first * P), n,
                       rev);
    }
  }
}

template <class T, Interp I, Padding P>
void affine_impl(T* out, const T* images, const double* matrices, const float* fill, const T* fill_row,
                 const Geometry& g) {
  const int64_t rows = g.n * g.oh;
  const int64_t in_size = g.c * g.h * g.w, out_size = g.c * g.oh * g.ow;
  const Reverse rev = reverse_plan(int64_t(sizeof(T)) * (g.channels_last ? g.c : 1));
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (rows * g.ow * g.c >= kParallelElems)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r / g.oh, y = r % g.oh;
    const double* m = matrices + 6 * i;
    GatherMap mp;
    if (augment::integer_map(m, &mp))
      gather_rows(out + i * out_size, images + i * in_size, mp, fill_row, g, P, rev, y, y + 1);
    else
      warp_row<T, I, P>(out + i * out_size, images + i * in_size, m, fill, g, y);
  }
}

template <class T, Interp I>
void affine_pad(T* out, const T* images, const double* matrices, const float* fill, const T* fill_row,
                const Geometry& g, Padding pad) {
  switch (pad) {
    case Padding::constant:
      return affine_impl<T, I, Padding::constant>(out, images, matrices, fill, fill_row, g);
    case Padding::edge:
      return affine_impl<T, I, Padding::edge>(out, images, matrices, fill, fill_row, g);
    case Padding::reflect:
      return affine_impl<T, I, Padding::reflect>(out, images, matrices, fill, fill_row, g);
  }
}

constexpr int64_t kNoiseBlock = 64;  // float32 elements per 16 Philox counters

// out[k] ← images[k] with the noise values z[k] (or, salt and pepper, the words wf[k]).
template <class T, augment::NoiseKind K>
inline void noise_apply(T* out, const T* images, const float* z, const uint32_t* wf, int64_t count,
                        const augment::Noise& s) {
  if constexpr (K == augment::NoiseKind::salt_pepper) {
    const T top = sizeof(T) == 1 ? T(255) : T(1);
    for (int64_t k = 0; k < count; ++k)
      out[k] = uint64_t(wf[k]) < s.pepper ? T(0) : uint64_t(wf[k]) >= s.salt ? top : images[k];
  } else {
    int64_t k = 0;
    if constexpr (sizeof(T) == 1) {
      // to_pixel in registers: bytes widened straight to int32 and narrowed back (the
      // auto-vectorised loop goes through int16 lanes and twice as many conversions)
#if defined(__AVX512F__)
      const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f), shifter = _mm512_set1_ps(12582912.0f);
      for (; k + 16 <= count; k += 16) {
        const __m128i px = _mm_loadu_si128(reinterpret_cast<const __m128i*>(images + k));
        __m512 v = _mm512_add_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(px)), _mm512_loadu_ps(z + k));
        v = _mm512_min_ps(_mm512_max_ps(v, zero), top);  // to_pixel's clamp (no NaN: finite inputs)
        v = _mm512_sub_ps(_mm512_add_ps(v, shifter), shifter);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
      }
#elif defined(__AVX2__)
      const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f), shifter = _mm256_set1_ps(12582912.0f);
      for (; k + 8 <= count; k += 8) {
        const __m128i px = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(images + k));
        __m256 v = _mm256_add_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(px)), _mm256_loadu_ps(z + k));
        v = _mm256_min_ps(_mm256_max_ps(v, zero), top);
        v = _mm256_sub_ps(_mm256_add_ps(v, shifter), shifter);
        const __m256i q = _mm256_cvttps_epi32(v);  // 0..255: packs without saturation effects
        const __m128i q16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + k), _mm_packus_epi16(q16, q16));
      }
#endif
    }
#pragma omp simd
    for (int64_t j = k; j < count; ++j) out[j] = to_pixel<T>(float(images[j]) + z[j]);
  }
}

template <class T, augment::NoiseKind K>
void noise_impl(T* out, const T* images, int64_t n, const augment::Noise& s) {
  const rng::Philox16 gen(s.seed, s.offset);
  // The float32 fill's transforms (rng/random_block.hpp): n_i is element i of that fill.
  rng::Fill fill{};
  fill.seed = s.seed;
  fill.offset = s.offset;
  fill.dist = K == augment::NoiseKind::uniform ? rng::Dist::uniform : rng::Dist::normal;
  fill.loc = s.loc;
  fill.scale = s.scale;
  const int64_t i0 = int64_t(s.start), i1 = i0 + n;
  const int64_t b0 = i0 / kNoiseBlock, b1 = (i1 + kNoiseBlock - 1) / kNoiseBlock;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (n >= kParallelElems)
  for (int64_t b = b0; b < b1; ++b) {
    alignas(64) uint32_t w[4][16];
    alignas(64) float z[kNoiseBlock];
    gen.words(uint64_t(b) * 16, w);
    if constexpr (K == augment::NoiseKind::gaussian) block_values<float, rng::Dist::normal>(z, w, fill);
    if constexpr (K == augment::NoiseKind::uniform) block_values<float, rng::Dist::uniform>(z, w, fill);
    const int64_t lo = b * kNoiseBlock > i0 ? b * kNoiseBlock : i0;
    const int64_t hi = b * kNoiseBlock + kNoiseBlock < i1 ? b * kNoiseBlock + kNoiseBlock : i1;
    const int64_t k0 = lo - b * kNoiseBlock;
    noise_apply<T, K>(out + (lo - i0), images + (lo - i0), z + k0, &w[0][0] + k0, hi - lo, s);
  }
}

}  // namespace

template <class T>
void augment_noise(T* out, const T* images, int64_t n, const augment::Noise& s) {
  switch (s.kind) {
    case augment::NoiseKind::gaussian:
      return noise_impl<T, augment::NoiseKind::gaussian>(out, images, n, s);
    case augment::NoiseKind::uniform:
      return noise_impl<T, augment::NoiseKind::uniform>(out, images, n, s);
    case augment::NoiseKind::salt_pepper:
      return noise_impl<T, augment::NoiseKind::salt_pepper>(out, images, n, s);
  }
}

template <class T>
void augment_affine(T* out, const T* images, const double* matrices, const float* fill, const T* fill_row,
                    const Geometry& g, Interp interp, Padding pad) {
  if (interp == Interp::nearest)
    affine_pad<T, Interp::nearest>(out, images, matrices, fill, fill_row, g, pad);
  else
    affine_pad<T, Interp::bilinear>(out, images, matrices, fill, fill_row, g, pad);
}

template <class T>
void augment_gather(T* out, const T* images, const GatherMap* maps, const T* fill_row, const Geometry& g, Padding pad) {
  const int64_t in_size = g.c * g.h * g.w, out_size = g.c * g.oh * g.ow;
  // Tasks: blocks of rows of one image, of about kTaskBytes (whole images when small).
  const int64_t row_bytes = g.ow * g.c * int64_t(sizeof(T));
  const int64_t per = row_bytes > 0 ? kTaskBytes / row_bytes : g.oh;
  const int64_t block = per < 1 ? 1 : (per > g.oh ? g.oh : per);
  const int64_t blocks = block > 0 ? (g.oh + block - 1) / block : 0, tasks = g.n * blocks;
  const Reverse rev = reverse_plan(int64_t(sizeof(T)) * (g.channels_last ? g.c : 1));
  auto task = [&](int64_t t) {
    const int64_t i = t / blocks, y0 = (t % blocks) * block, y1 = y0 + block < g.oh ? y0 + block : g.oh;
    gather_rows(out + i * out_size, images + i * in_size, maps[i], fill_row, g, pad, rev, y0, y1);
  };
  const int threads = g.n * out_size >= kParallelElems ? ::nndl::num_threads() : 1;
  for_each_index(threads, tasks, task);
}

template <class T>
void augment_erase(T* out, const int64_t* boxes, const float* fill, const Geometry& g) {
  const int64_t size = g.c * g.h * g.w, plane = g.h * g.w;
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(static) if (g.n * size >= kParallelElems)
  for (int64_t i = 0; i < g.n; ++i) {
    const int64_t* b = boxes + 4 * i;
    T* img = out + i * size;
    for (int64_t y = b[0]; y < b[0] + b[2]; ++y)
      for (int64_t x = b[1]; x < b[1] + b[3]; ++x)
        for (int64_t c = 0; c < g.c; ++c)
          (g.channels_last ? img[(y * g.w + x) * g.c + c] : img[c * plane + y * g.w + x]) = to_pixel<T>(fill[c]);
  }
}

#define NNDL_AUGMENT_INSTANTIATE(T)                                                                                    \
  template void augment_affine(T*, const T*, const double*, const float*, const T*, const Geometry&, Interp, Padding); \
  template void augment_gather(T*, const T*, const GatherMap*, const T*, const Geometry&, Padding);                    \
  template void augment_erase(T*, const int64_t*, const float*, const Geometry&);                                      \
  template void augment_noise(T*, const T*, int64_t, const augment::Noise&);
NNDL_AUGMENT_INSTANTIATE(float)
NNDL_AUGMENT_INSTANTIATE(uint8_t)

}  // namespace nndl::NNDL_TARGET
