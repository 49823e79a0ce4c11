// Batched image augmentation: one affine warp per image, integer gathers (crops, flips),
// rectangle erasing and additive noise. Formulas and the pixel-centre convention:
// python/nndl_fast/augment.py.
//
// Images are (N, C, H, W) or, channels_last, (N, H, W, C), of T = uint8_t or float.
// Coordinates: x is the column, y the row; pixel (x, y) is sampled at its centre, the
// integer point (x, y). A matrix M (2×3, row-major, double) maps an OUTPUT pixel to the
// INPUT point it samples (the inverse map, as scipy.ndimage.affine_transform takes it):
//     xs = m00·x + (m01·y + m02),   ys = m10·x + (m11·y + m12)
// (evaluated in that order, in double, so the NumPy reference rounds identically).
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

namespace nndl::augment {

enum class Interp : int { nearest = 0, bilinear = 1 };
// What an input index outside [0, n) reads: the fill value, the nearest edge pixel, or the
// mirror image about the edge (… 1 0 | 0 1 … n−1 | n−1 n−2 …, scipy's "reflect").
enum class Padding : int { constant = 0, edge = 1, reflect = 2 };

struct Geometry {
  int64_t n, c, h, w;  // input batch
  int64_t oh, ow;      // output height and width
  bool channels_last;
};

// An integer map of one image: out[y, x] = in[sy0 + sdy·y, sx0 + sdx·x], sdx, sdy = ±1.
struct GatherMap {
  int64_t sx0, sdx, sy0, sdy;
};

enum class NoiseKind : int { gaussian = 0, uniform = 1, salt_pepper = 2 };

// Noise n_i of element i (of the batch in C order) from Philox4x32-10 at (seed, offset):
// the words and transforms of the float32 random fills (rng/random.hpp), so n_i is exactly
// element i of nndl_fast.random's float32 normal (gaussian: loc + scale·z) or uniform
// (uniform: loc + scale·u) fill; salt and pepper compares the element's uniform word w_i:
// w_i < pepper → 0, w_i ≥ salt → the dtype's top (255 or 1.0), else the pixel is kept.
struct Noise {
  uint64_t seed, offset;
  uint64_t start;  // out and images hold elements start, start + 1, … of the batch
  NoiseKind kind;
  double loc, scale;
  uint64_t pepper, salt;  // in [0, 2^32]
};

// Coordinates are clamped to ±kFar before any integer conversion: far outside every image,
// inside int32, and exact in double.
constexpr double kFar = 1073741824.0;  // 2^30

// True when M maps pixel centres to pixel centres one to one (a flip and/or an integer
// shift): then every interpolation reads exactly one input pixel, and the warp is a gather.
inline bool integer_map(const double* m, GatherMap* g) {
  const bool flips = (m[0] == 1.0 || m[0] == -1.0) && (m[4] == 1.0 || m[4] == -1.0) && m[1] == 0.0 && m[3] == 0.0;
  if (!flips || !(m[2] > -kFar && m[2] < kFar && m[5] > -kFar && m[5] < kFar)) return false;
  if (m[2] != double(int64_t(m[2])) || m[5] != double(int64_t(m[5]))) return false;
  if (g) *g = GatherMap{int64_t(m[2]), int64_t(m[0]), int64_t(m[5]), int64_t(m[4])};
  return true;
}

}  // namespace nndl::augment

NNDL_DECLARE_KERNELS(
    // out[i] ← images[i] warped by matrices[i] (N × 6 doubles), i < N. Output (oh, ow) =
    // input (h, w). fill: C floats (the constant padding's value per channel); fill_row: an
    // output row of those values as pixels (fill_row below).
    template <class T>
    void augment_affine(T* out, const T* images, const double* matrices, const float* fill, const T* fill_row,
                        const augment::Geometry& g, augment::Interp interp, augment::Padding pad);

    // out[i] ← the gather of images[i] by maps[i]; output (oh, ow) may differ from (h, w).
    // fill_row: the constant padding's output row (augment::fill_row).
    template <class T> void augment_gather(T* out, const T* images, const augment::GatherMap* maps, const T* fill_row,
                                           const augment::Geometry& g, augment::Padding pad);

    // out[i][rows boxes[i][0] + [0, boxes[i][2]), cols boxes[i][1] + [0, boxes[i][3])] ← fill
    // (per channel), in place; boxes: N × 4 int64 (top, left, height, width), inside the image.
    template <class T> void augment_erase(T* out, const int64_t* boxes, const float* fill, const augment::Geometry& g);

    // out[i] = images[i] + noise_i (uint8: rounded to nearest even, saturated), i < n.
    // out may be images (in place).
    template <class T> void augment_noise(T* out, const T* images, int64_t n, const augment::Noise& noise);)
