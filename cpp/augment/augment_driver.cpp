#include "augment/augment_driver.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "rng/philox.hpp"

namespace nndl::augment {

void draw_uniforms(double* u, int64_t n, int64_t k, uint64_t seed, uint64_t offset) {
  const uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d0 = 0; d0 < k; d0 += 4) {
      const uint32_t ctr[4] = {uint32_t(i), uint32_t(d0 / 4), uint32_t(offset), uint32_t(offset >> 32)};
      uint32_t w[4];
      rng::philox4x32_10(w, ctr, key);
      for (int64_t d = d0; d < k && d < d0 + 4; ++d) u[i * k + d] = double(w[d - d0]) * (1.0 / 4294967296.0);
    }
}

void crop_flip_size(const CropFlipStep* steps, int64_t count, int64_t h, int64_t w, int64_t* oh, int64_t* ow) {
  for (int64_t k = 0; k < count; ++k)
    if (steps[k].kind == 0) {
      h = steps[k].oh;
      w = steps[k].ow;
    }
  *oh = h;
  *ow = w;
}

int64_t crop_flip_maps(GatherMap* out, const CropFlipStep* steps, int64_t count, int64_t n, int64_t h, int64_t w,
                       uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) {
    GatherMap t{0, 1, 0, 1};  // x_in = sx0 + sdx·x, y_in = sy0 + sdy·y
    int64_t hh = h, ww = w;
    for (int64_t k = 0; k < count; ++k) {
      const CropFlipStep& s = steps[k];
      const uint32_t key[2] = {uint32_t(s.seed), uint32_t(s.seed >> 32)};
      const uint32_t ctr[4] = {uint32_t(i), 0, uint32_t(offset), uint32_t(offset >> 32)};
      uint32_t word[4];
      rng::philox4x32_10(word, ctr, key);
      const double u0 = double(word[0]) * (1.0 / 4294967296.0), u1 = double(word[1]) * (1.0 / 4294967296.0);
      int64_t mx0, mdx = 1, my0, mdy = 1;
      if (s.kind == 0) {
        const int64_t top = int64_t(std::floor(u0 * double(hh + 2 * s.padding - s.oh + 1)));
        const int64_t left = int64_t(std::floor(u1 * double(ww + 2 * s.padding - s.ow + 1)));
        mx0 = left - s.padding;
        my0 = top - s.padding;
        hh = s.oh;
        ww = s.ow;
      } else {
        const bool hf = u0 < s.hflip_p, vf = u1 < s.vflip_p;
        mx0 = hf ? ww - 1 : 0;
        mdx = hf ? -1 : 1;
        my0 = vf ? hh - 1 : 0;
        mdy = vf ? -1 : 1;
      }
      t = GatherMap{t.sx0 + t.sdx * mx0, t.sdx * mdx, t.sy0 + t.sdy * my0, t.sdy * mdy};
    }
    const double lim = kFar;
    if (!(double(t.sx0) > -lim && double(t.sx0) < lim && double(t.sy0) > -lim && double(t.sy0) < lim)) return -1 - i;
    out[i] = t;
  }
  return n;
}

int64_t first_nonfinite(const double* m, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(m[i])) return i;
  return -1;
}

int64_t gather_maps(GatherMap* out, const double* maps, int64_t n) {
  for (int64_t i = 0; i < 4 * n; ++i) {
    const double v = maps[i];
    const bool step = i % 2 == 1;
    const bool ok = step ? (v == 1.0 || v == -1.0) : (v > -kFar && v < kFar && v == std::floor(v));
    if (!ok) return -1 - i;
  }
  for (int64_t i = 0; i < n; ++i) {
    const double* m = maps + 4 * i;
    out[i] = GatherMap{int64_t(m[0]), int64_t(m[1]), int64_t(m[2]), int64_t(m[3])};
  }
  return n;
}

int64_t erase_boxes(int64_t* out, const double* boxes, int64_t n, int64_t h, int64_t w) {
  for (int64_t i = 0; i < 4 * n; ++i) {
    const double v = boxes[i], limit = double(i % 2 == 0 ? h : w);
    if (!(v >= 0 && v <= limit && v == std::floor(v))) return -1 - i;
  }
  for (int64_t i = 0; i < n; ++i) {
    const double* b = boxes + 4 * i;
    if (b[0] + b[2] > double(h)) return -1 - (4 * i + 2);
    if (b[1] + b[3] > double(w)) return -1 - (4 * i + 3);
    for (int q = 0; q < 4; ++q) out[4 * i + q] = int64_t(b[q]);
  }
  return n;
}

template <class T>
void erase(T* out, const T* images, const int64_t* boxes, const float* fill, const Geometry& g) {
  if (out != images) std::memcpy(out, images, size_t(g.n * g.c * g.h * g.w) * sizeof(T));
  NNDL_DISPATCH(augment_erase<T>)(out, boxes, fill, g);
}

// The constant padding's output row: NCHW, C rows of ow values (row c: fill[c]); channels
// last, ow pixels of C values. uint8 rounds half to even and saturates (the kernels' to_pixel).
template <class T>
std::vector<T> fill_row(const float* fill, const Geometry& g) {
  std::vector<T> row(size_t(g.c * g.ow > 0 ? g.c * g.ow : 1));
  for (int64_t c = 0; c < g.c; ++c) {
    float v = fill[c];
    T t;
    if constexpr (sizeof(T) == 1) {
      v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
      const float shifter = 12582912.0f;  // 1.5·2^23
      t = T(int32_t((v + shifter) - shifter));
    } else {
      t = v;
    }
    for (int64_t x = 0; x < g.ow; ++x) row[size_t(g.channels_last ? x * g.c + c : c * g.ow + x)] = t;
  }
  return row;
}

// Output bytes per chunk when noise follows the warp: about half a 2 MiB L2.
constexpr int64_t kFuseBytes = int64_t{1} << 20;

template <class T>
void warp(T* out, const T* images, const double* matrices, const GatherMap* maps, const float* fill, const Geometry& g,
          Interp interp, Padding pad, const Noise* noise) {
  const std::vector<T> row = fill_row<T>(fill, g);
  auto run = [&](T* o, const T* x, int64_t i0, int64_t count) {
    Geometry gc = g;
    gc.n = count;
    if (maps)
      NNDL_DISPATCH(augment_gather<T>)(o, x, maps + i0, row.data(), gc, pad);
    else
      NNDL_DISPATCH(augment_affine<T>)(o, x, matrices + 6 * i0, fill, row.data(), gc, interp, pad);
  };
  if (!noise) return run(out, images, 0, g.n);
  const int64_t in_size = g.c * g.h * g.w, out_size = g.c * g.oh * g.ow;
  const int64_t per = out_size * int64_t(sizeof(T)) > 0 ? kFuseBytes / (out_size * int64_t(sizeof(T))) : g.n;
  const int64_t chunk = per > 0 ? per : 1;
  for (int64_t i0 = 0; i0 < g.n; i0 += chunk) {
    const int64_t count = g.n - i0 < chunk ? g.n - i0 : chunk;
    T* o = out + i0 * out_size;
    run(o, images + i0 * in_size, i0, count);
    Noise nc = *noise;
    nc.start = uint64_t(i0 * out_size);
    NNDL_DISPATCH(augment_noise<T>)(o, o, count * out_size, nc);
  }
}

template void warp(float*, const float*, const double*, const GatherMap*, const float*, const Geometry&, Interp,
                   Padding, const Noise*);
template void warp(uint8_t*, const uint8_t*, const double*, const GatherMap*, const float*, const Geometry&, Interp,
                   Padding, const Noise*);

template void erase(float*, const float*, const int64_t*, const float*, const Geometry&);
template void erase(uint8_t*, const uint8_t*, const int64_t*, const float*, const Geometry&);

}  // namespace nndl::augment
