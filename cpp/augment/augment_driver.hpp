// Augmentation drivers: what one call of nndl_fast.augment runs, given checked arrays.
// Compiled once (not per SIMD target); the kernels of augment.hpp through NNDL_DISPATCH.
#pragma once

#include <cstdint>

#include "augment/augment.hpp"

namespace nndl::augment {

// Draws per image: u[i·k + d] = word (d mod 4) of Philox4x32-10(counter = (i, ⌊d/4⌋,
// lo32(offset), hi32(offset)), key = (lo32(seed), hi32(seed))) · 2⁻³², in [0, 1); i < 2³².
// Image i's draws depend on (seed, offset, i) only, not on the batch size.
void draw_uniforms(double* u, int64_t n, int64_t k, uint64_t seed, uint64_t offset);

// The index of the first non-finite value of m[0:count), or −1.
int64_t first_nonfinite(const double* m, int64_t count);

// The gather maps of maps[0 : 4n) = (sx0, sdx, sy0, sdy) per image, or the index of the
// first value that is not an integer in (−2³⁰, 2³⁰) (or a step not ±1) as −1 − index.
int64_t gather_maps(GatherMap* out, const double* maps, int64_t n);

// A step of a run of crops and flips (augment.py's RandomCrop, RandomFlip), folded per image.
// Crop (kind 0): top = ⌊u₀·(h + 2·padding − oh + 1)⌋, left = ⌊u₁·(w + 2·padding − ow + 1)⌋,
// for its input (h, w); flip (kind 1): horizontal when u₀ < hflip_p, vertical when u₁ < vflip_p;
// u of draw_uniforms(·, n, 2, seed, offset).
struct CropFlipStep {
  int kind;
  uint64_t seed;
  double hflip_p, vflip_p;
  int64_t padding, oh, ow;
};

// The output (oh, ow) of the steps on (h, w) images.
void crop_flip_size(const CropFlipStep* steps, int64_t count, int64_t h, int64_t w, int64_t* oh, int64_t* ow);

// The gather map of each image (the steps' inverse maps composed, first step's applied last),
// or −1 − i for the first image whose shift leaves (−2³⁰, 2³⁰).
int64_t crop_flip_maps(GatherMap* out, const CropFlipStep* steps, int64_t count, int64_t n, int64_t h, int64_t w,
                       uint64_t offset);

// boxes[0 : 4n) = (top, left, height, width) per image as int64, or −1 − index of the first
// value that is not an integer or leaves the h × w image.
int64_t erase_boxes(int64_t* out, const double* boxes, int64_t n, int64_t h, int64_t w);

// out ← the warp (augment_affine) or the gather (augment_gather, maps not null) of images,
// and, when noise is not null, out += noise in the same sweep: the batch goes in chunks of
// images small enough to stay in cache between the two kernels.
template <class T>
void warp(T* out, const T* images, const double* matrices, const GatherMap* maps, const float* fill, const Geometry& g,
          Interp interp, Padding pad, const Noise* noise);

// out ← images with boxes erased (copied first unless out is images).
template <class T>
void erase(T* out, const T* images, const int64_t* boxes, const float* fill, const Geometry& g);

}  // namespace nndl::augment
