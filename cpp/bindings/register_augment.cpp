// nndl_fast._core augmentation: the affine warp, integer gathers (crops, flips), erasing,
// noise and the per-image parameter draws. Interpolation, padding and the random
// parameters' ranges are checked in python/nndl_fast/augment.py; arrays here, by Args.
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "augment/augment_driver.hpp"
#include "bindings/args.hpp"
#include "bindings/register.hpp"

namespace nndl::bind {
namespace {

const char* layout(bool channels_last) { return channels_last ? "(N, H, W, C)" : "(N, C, H, W)"; }

augment::Geometry geometry(const Arg& images, bool channels_last, int64_t oh, int64_t ow) {
  const int64_t c = images.dim(channels_last ? 3 : 1);
  const int64_t h = images.dim(channels_last ? 1 : 2), w = images.dim(channels_last ? 2 : 3);
  // The warp indexes pixels of one image with 32-bit offsets.
  if (h * w >= (int64_t{1} << 31))
    throw py::value_error("images have " + std::to_string(h * w) +
                          " pixels per image; at most 2**31 - 1 are supported");
  return {images.dim(0), c, h, w, oh < 0 ? h : oh, ow < 0 ? w : ow, channels_last};
}

// Edge and reflect padding need a pixel to repeat: an empty image has none.
void require_pixels(const augment::Geometry& g, int padding) {
  if (padding != int(augment::Padding::constant) && (g.h == 0 || g.w == 0) && g.n * g.c * g.oh * g.ow > 0)
    throw py::value_error("images are empty (H or W is 0): only padding_mode='constant' can fill the output");
}

std::vector<int64_t> out_shape(const augment::Geometry& g) {
  return g.channels_last ? std::vector<int64_t>{g.n, g.oh, g.ow, g.c} : std::vector<int64_t>{g.n, g.c, g.oh, g.ow};
}

// fill: one value for every channel, or one per channel.
std::vector<float> fill_values(const std::vector<double>& fill, int64_t c) {
  if (fill.size() != 1 && int64_t(fill.size()) != c)
    throw py::value_error("fill has " + std::to_string(fill.size()) + " values but the images have " +
                          std::to_string(c) + " channels: give one value, or one per channel");
  std::vector<float> f(size_t(c > 0 ? c : 1));
  for (size_t k = 0; k < f.size(); ++k) f[k] = float(fill.size() == 1 ? fill[0] : fill[k]);
  return f;
}

Spec out_spec(const augment::Geometry& g, const char* what) { return out("out").pixels().shape(out_shape(g), what); }

// The noise fused into a warp: None, or (kind, seed, offset, loc, scale, pepper, salt) as
// augment.py's _noise_params builds them.
std::optional<augment::Noise> noise_arg(py::handle noise) {
  if (noise.is_none()) return std::nullopt;
  const auto t = noise.cast<std::tuple<int, uint64_t, uint64_t, double, double, uint64_t, uint64_t>>();
  return augment::Noise{
      std::get<1>(t), std::get<2>(t), 0, augment::NoiseKind(std::get<0>(t)), std::get<3>(t), std::get<4>(t),
      std::get<5>(t), std::get<6>(t)};
}

// Calls fn(float{}) or fn(uint8_t{}) for the images' dtype.
template <class Fn>
void with_pixels(DType d, Fn&& fn) {
  if (d == DType::u8)
    fn(uint8_t{});
  else
    fn(float{});
}

// out ← images gathered by the per-image maps (nearest pixel), plus noise if given.
py::array gather_nearest(DType d, const Arg& y, const Arg& images, const std::vector<augment::GatherMap>& gm,
                         const std::vector<float>& fill, const augment::Geometry& g, int padding,
                         const std::optional<augment::Noise>& noise) {
  with_pixels(d, [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    augment::warp<T>(y.as<T>(), images.as<T>(), nullptr, gm.data(), fill.data(), g, augment::Interp::nearest,
                     augment::Padding(padding), noise ? &*noise : nullptr);
  });
  return y.array();
}

}  // namespace

void register_augment(py::module_& m) {
  m.def(
      "augment_affine",
      [](py::handle images_, py::handle matrices_, py::handle out_, const std::vector<double>& fill, int interpolation,
         int padding, bool channels_last, py::handle noise_) {
        Args args;
        const Arg images = args.array(images_, in("images").pixels().ndim(4, layout(channels_last)));
        const augment::Geometry g = geometry(images, channels_last, -1, -1);
        const Arg mats = args.array(matrices_, in("matrices").float64().shape({g.n, 2, 3}, "(N, 2, 3), one per image"));
        const Arg y = args.output(out_, out_spec(g, "the shape of images"));
        args.check_overlap();
        const std::vector<float> f = fill_values(fill, g.c);
        require_pixels(g, padding);
        const std::optional<augment::Noise> noise = noise_arg(noise_);
        if (const int64_t bad = augment::first_nonfinite(mats.as<double>(), mats.size()); bad >= 0)
          throw py::value_error("matrices[" + std::to_string(bad / 6) + "] is not finite");
        with_pixels(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          augment::warp<T>(y.as<T>(), images.as<T>(), mats.as<double>(), nullptr, f.data(), g,
                           augment::Interp(interpolation), augment::Padding(padding), noise ? &*noise : nullptr);
        });
        return y.array();
      },
      py::arg("images"), py::arg("matrices"), py::arg("out"), py::arg("fill"), py::arg("interpolation"),
      py::arg("padding"), py::arg("channels_last"), py::arg("noise") = py::none(),
      "out[i] = images[i] warped by matrices[i] (output pixel → input point), plus noise if given; returns out.");

  m.def(
      "augment_gather",
      [](py::handle images_, py::handle maps_, py::handle out_, int64_t out_h, int64_t out_w,
         const std::vector<double>& fill, int padding, bool channels_last, py::handle noise_) {
        Args args;
        const Arg images = args.array(images_, in("images").pixels().ndim(4, layout(channels_last)));
        const augment::Geometry g = geometry(images, channels_last, out_h, out_w);
        const Arg maps = args.array(maps_, in("maps").float64().shape({g.n, 4}, "(N, 4), one per image"));
        const Arg y = args.output(out_, out_spec(g, "(N, C, height, width) of the crop, in the images' layout"));
        args.check_overlap();
        const std::vector<float> f = fill_values(fill, g.c);
        require_pixels(g, padding);
        const std::optional<augment::Noise> noise = noise_arg(noise_);
        std::vector<augment::GatherMap> gm(size_t(g.n));
        if (const int64_t r = augment::gather_maps(gm.data(), maps.as<double>(), g.n); r < 0)
          throw py::value_error("maps[" + std::to_string((-1 - r) / 4) + "] must be integers (sx0, ±1, sy0, ±1)");
        return gather_nearest(args.dtype(), y, images, gm, f, g, padding, noise);
      },
      py::arg("images"), py::arg("maps"), py::arg("out"), py::arg("out_h"), py::arg("out_w"), py::arg("fill"),
      py::arg("padding"), py::arg("channels_last"), py::arg("noise") = py::none(),
      "out[i, y, x] = images[i, sy0 + sdy·y, sx0 + sdx·x] with maps[i] = (sx0, sdx, sy0, sdy), plus noise if given; "
      "returns out.");

  m.def(
      "augment_crop_flip",
      [](py::handle images_,
         const std::vector<std::tuple<int, uint64_t, double, double, int64_t, int64_t, int64_t>>& steps_,
         uint64_t offset, py::handle out_, const std::vector<double>& fill, int padding, bool channels_last,
         py::handle noise_) {
        Args args;
        const Arg images = args.array(images_, in("images").pixels().ndim(4, layout(channels_last)));
        std::vector<augment::CropFlipStep> steps;
        for (const auto& t : steps_)
          steps.push_back({std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t), std::get<4>(t),
                           std::get<5>(t), std::get<6>(t)});
        const augment::Geometry g0 = geometry(images, channels_last, -1, -1);
        int64_t oh, ow;
        augment::crop_flip_size(steps.data(), int64_t(steps.size()), g0.h, g0.w, &oh, &ow);
        const augment::Geometry g = geometry(images, channels_last, oh, ow);
        const Arg y = args.output(out_, out_spec(g, "(N, C, height, width) of the crop, in the images' layout"));
        args.check_overlap();
        const std::vector<float> f = fill_values(fill, g.c);
        require_pixels(g, padding);
        const std::optional<augment::Noise> noise = noise_arg(noise_);
        std::vector<augment::GatherMap> gm(size_t(g.n));
        if (const int64_t r =
                augment::crop_flip_maps(gm.data(), steps.data(), int64_t(steps.size()), g.n, g.h, g.w, offset);
            r < 0)
          throw py::value_error("the crops of image " + std::to_string(-1 - r) +
                                " move it 2**30 pixels or more: padding is too large");
        return gather_nearest(args.dtype(), y, images, gm, f, g, padding, noise);
      },
      py::arg("images"), py::arg("steps"), py::arg("offset"), py::arg("out"), py::arg("fill"), py::arg("padding"),
      py::arg("channels_last"), py::arg("noise") = py::none(),
      "out = images through the crop and flip steps (kind, seed, hflip_p, vflip_p, padding, oh, ow), folded into "
      "one gather per image, plus noise if given; returns out.");

  m.def(
      "augment_erase",
      [](py::handle images_, py::handle boxes_, py::handle out_, const std::vector<double>& fill, bool channels_last) {
        Args args;
        const Arg images = args.array(images_, in("images").pixels().ndim(4, layout(channels_last)));
        const augment::Geometry g = geometry(images, channels_last, -1, -1);
        const Arg boxes = args.array(boxes_, in("boxes").float64().shape({g.n, 4}, "(N, 4), one per image"));
        const Arg y = args.output(out_, out_spec(g, "the shape of images").may_be("images"));
        args.check_overlap();
        const std::vector<float> f = fill_values(fill, g.c);
        std::vector<int64_t> b(size_t(4 * g.n));
        if (const int64_t r = augment::erase_boxes(b.data(), boxes.as<double>(), g.n, g.h, g.w); r < 0)
          throw py::value_error("boxes[" + std::to_string((-1 - r) / 4) +
                                "] must be integers (top, left, height, width) inside the image");
        with_pixels(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          augment::erase<T>(y.as<T>(), images.as<T>(), b.data(), f.data(), g);
        });
        return y.array();
      },
      py::arg("images"), py::arg("boxes"), py::arg("out"), py::arg("fill"), py::arg("channels_last"),
      "out = images with boxes[i] = (top, left, height, width) of image i set to fill; returns out.");

  m.def(
      "augment_noise",
      [](py::handle images_, py::handle out_, int kind, uint64_t seed, uint64_t offset, double loc, double scale,
         uint64_t pepper, uint64_t salt) {
        Args args;
        const Arg images = args.array(images_, in("images").pixels());
        const Arg y =
            args.output(out_, out("out").pixels().shape(images.shape(), "the shape of images").may_be("images"));
        args.check_overlap();
        const augment::Noise s{seed, offset, 0, augment::NoiseKind(kind), loc, scale, pepper, salt};
        with_pixels(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(augment_noise<T>)(y.as<T>(), images.as<T>(), images.size(), s);
        });
        return y.array();
      },
      py::arg("images"), py::arg("out"), py::arg("kind"), py::arg("seed"), py::arg("offset"), py::arg("loc"),
      py::arg("scale"), py::arg("pepper"), py::arg("salt"),
      "out = images + the noise of (seed, offset) (uint8: rounded, saturated); returns out.");

  m.def(
      "augment_uniforms",
      [](int64_t n, int64_t k, uint64_t seed, uint64_t offset) {
        if (n < 0 || n > (int64_t{1} << 32)) throw py::value_error("n must be in [0, 2**32]");
        if (k < 0 || k > 4 * 1024) throw py::value_error("k must be in [0, 4096]");
        py::array_t<double> u({n, k});
        augment::draw_uniforms(u.mutable_data(), n, k, seed, offset);
        return u;
      },
      py::arg("n"), py::arg("k"), py::arg("seed"), py::arg("offset"),
      "(n, k) uniforms in [0, 1): draw d of image i from Philox4x32-10 at (seed, offset, i).");
}

}  // namespace nndl::bind
