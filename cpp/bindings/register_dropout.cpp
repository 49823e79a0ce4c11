// nndl_fast._core dropout: forward from (seed, offset), backward from a packed mask or from
// (seed, offset) again, variational masks shared over time, and the raw Philox function.
// Probabilities and conventions are checked and turned into (threshold, scale) in
// python/nndl_fast/dropout.py; arrays are checked here, by Args.
#include <pybind11/stl.h>

#include <array>
#include <string>

#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "dropout/dropout_driver.hpp"
#include "rng/philox.hpp"

namespace nndl::bind {
namespace {

// The packed mask of n elements: packed_bytes(n) bytes, 1-D uint8.
Spec mask_spec(Spec s, int64_t n, const char* of) {
  return s.bytes().shape({dropout::packed_bytes(n)}, std::string("packed_size(") + of + ") bytes");
}

// The (n, f) elements a variational mask covers: x is (T, N, F) or, with ntf, (N, T, F).
int64_t mask_elements(const Arg& x, bool ntf) { return (ntf ? x.dim(0) : x.dim(1)) * x.dim(2); }

const char* layout(bool ntf) { return ntf ? "(N, T, F)" : "(T, N, F)"; }

// Named noise shapes, passed as the one entry of noise_shape (python/nndl_fast/dropout.py).
constexpr int64_t kChannelsFirst = -3;  // (N, C, 1, ..., 1)
constexpr int64_t kChannelsLast = -4;   // (N, 1, ..., 1, C)

// noise_shape resolved against x's shape (−1: x's size, Keras's None): one entry per axis of
// x, each x's size or 1.
std::vector<int64_t> resolved_noise(const Arg& x, const std::vector<int64_t>& noise_shape, const char* x_name) {
  const std::vector<int64_t> dims = x.shape();
  if (noise_shape.size() == 1 && (noise_shape[0] == kChannelsFirst || noise_shape[0] == kChannelsLast)) {
    const bool first = noise_shape[0] == kChannelsFirst;
    if (dims.size() < 2)
      throw py::value_error(std::string(x_name) + " has shape " + shape_str(dims) +
                            ": noise_shape=" + (first ? "\"channels_first\"" : "\"channels_last\"") +
                            " needs (N, C, ...) or (N, ..., C), two axes or more");
    std::vector<int64_t> noise(dims.size(), 1);
    noise[0] = dims[0];
    noise[first ? 1 : dims.size() - 1] = first ? dims[1] : dims.back();
    return noise;
  }
  if (noise_shape.size() != dims.size())
    throw py::value_error("noise_shape " + shape_str(noise_shape) + " must have one entry per axis of " + x_name +
                          ", of shape " + shape_str(dims));
  std::vector<int64_t> noise(dims.size());
  for (size_t k = 0; k < dims.size(); ++k) {
    noise[k] = noise_shape[k] < 0 ? dims[k] : noise_shape[k];
    if (noise[k] != dims[k] && noise[k] != 1)
      throw py::value_error("noise_shape " + shape_str(noise_shape) + " does not broadcast to " + x_name +
                            " of shape " + shape_str(dims) + ": each entry must be 1 or the size of that axis");
  }
  return noise;
}

int64_t noise_elements(const std::vector<int64_t>& noise) {
  int64_t n = 1;
  for (int64_t s : noise) n *= s;
  return n;
}

}  // namespace

void register_dropout(py::module_& m) {
  m.def(
      "philox4x32_10",
      [](std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
        std::array<uint32_t, 4> out;
        rng::philox4x32_10(out.data(), ctr.data(), key.data());
        return out;
      },
      py::arg("counter"), py::arg("key"), "Philox4x32-10 of one 128-bit counter and 64-bit key.");

  m.def(
      "dropout_forward",
      [](py::handle x_, py::handle out_, py::handle mask_out_, uint64_t seed, uint64_t offset, uint32_t threshold,
         double scale) {
        Args args;
        const Arg x = args.array(x_, in("x"));
        const Arg y = args.array(out_, out("out").shape(x.shape(), "the shape of x").may_be("x"));
        const Arg mask = args.array(
            mask_out_, mask_spec(out("mask_out").optional(), x.size(), "x.size: a bit per element, no noise_shape"));
        args.check_overlap();
        const dropout::Stream s{seed, offset, threshold};
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(dropout_forward<T>)(y.as<T>(), mask.as<uint8_t>(), x.as<T>(), x.size(), s, scale);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("mask_out"), py::arg("seed"), py::arg("offset"), py::arg("threshold"),
      py::arg("scale"), "out = x·(kept ? scale : 0), kept_i from (seed, offset, i); mask_out ← the packed bits.");

  m.def(
      "dropout_backward",
      [](py::handle dy_, py::handle out_, py::handle mask_, uint64_t seed, uint64_t offset, uint32_t threshold,
         double scale) {
        Args args;
        const Arg dy = args.array(dy_, in("dy"));
        const Arg dx = args.array(out_, out("out").shape(dy.shape(), "the shape of dy").may_be("dy"));
        const Arg mask = args.array(
            mask_, mask_spec(in("mask").optional(), dy.size(), "dy.size: a bit per element, no noise_shape"));
        args.check_overlap();
        const dropout::Stream s{seed, offset, threshold};
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          dropout::backward<T>(dx.as<T>(), dy.as<T>(), mask.as<uint8_t>(), dy.size(), s, scale);
        });
      },
      py::arg("dy"), py::arg("out"), py::arg("mask"), py::arg("seed"), py::arg("offset"), py::arg("threshold"),
      py::arg("scale"), "out = dy·(kept ? scale : 0), kept from the packed mask or, if None, from (seed, offset).");

  m.def(
      "dropout_mask",
      [](py::handle mask_out_, int64_t n, uint64_t seed, uint64_t offset, uint32_t threshold) {
        Args args;
        const int64_t count = checked_numel({n}, "n");
        const Arg mask = args.array(mask_out_, mask_spec(out("mask_out"), count, "n"));
        const dropout::Stream s{seed, offset, threshold};
        py::gil_scoped_release nogil;
        NNDL_DISPATCH(dropout_mask)(mask.as<uint8_t>(), count, s);
      },
      py::arg("mask_out"), py::arg("n"), py::arg("seed"), py::arg("offset"), py::arg("threshold"),
      "mask_out ← the packed kept bits of n elements.");

  m.def(
      "dropout_noise_forward",
      [](py::handle x_, py::handle out_, py::handle mask_out_, const std::vector<int64_t>& noise_shape, uint64_t seed,
         uint64_t offset, uint32_t threshold, double scale) {
        Args args;
        const Arg x = args.array(x_, in("x"));
        const std::vector<int64_t> noise = resolved_noise(x, noise_shape, "x");
        const Arg y = args.array(out_, out("out").shape(x.shape(), "the shape of x").may_be("x"));
        const Arg mask =
            args.array(mask_out_, mask_spec(out("mask_out").optional(), noise_elements(noise), "prod(noise_shape)"));
        args.check_overlap();
        const dropout::Stream s{seed, offset, threshold};
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          dropout::noise_shaped<T>(y.as<T>(), mask.as<uint8_t>(), false, x.as<T>(), x.shape(), noise, s, scale);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("mask_out"), py::arg("noise_shape"), py::arg("seed"), py::arg("offset"),
      py::arg("threshold"), py::arg("scale"),
      "Dropout of x with a mask of noise_shape broadcast to x (-1: x's size); mask_out ← its packed bits.");

  m.def(
      "dropout_noise_backward",
      [](py::handle dy_, py::handle out_, py::handle mask_, const std::vector<int64_t>& noise_shape, uint64_t seed,
         uint64_t offset, uint32_t threshold, double scale) {
        Args args;
        const Arg dy = args.array(dy_, in("dy"));
        const std::vector<int64_t> noise = resolved_noise(dy, noise_shape, "dy");
        const Arg dx = args.array(out_, out("out").shape(dy.shape(), "the shape of dy").may_be("dy"));
        const Arg mask =
            args.array(mask_, mask_spec(in("mask").optional(), noise_elements(noise), "prod(noise_shape)"));
        args.check_overlap();
        const dropout::Stream s{seed, offset, threshold};
        uint8_t* mp = mask.as<uint8_t>();  // read only when given; drawn into scratch otherwise
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          dropout::noise_shaped<T>(dx.as<T>(), mp, mp != nullptr, dy.as<T>(), dy.shape(), noise, s, scale);
        });
      },
      py::arg("dy"), py::arg("out"), py::arg("mask"), py::arg("noise_shape"), py::arg("seed"), py::arg("offset"),
      py::arg("threshold"), py::arg("scale"),
      "Gradient of dropout_noise_forward: dy masked by the packed mask or, if None, by (seed, offset).");

  m.def(
      "variational_dropout_forward",
      [](py::handle x_, py::handle out_, py::handle mask_out_, bool ntf, uint64_t seed, uint64_t offset,
         uint32_t threshold, double scale) {
        Args args;
        const Arg x = args.array(x_, in("x").ndim(3, layout(ntf)));
        const Arg y = args.array(out_, out("out").shape(x.shape(), "the shape of x").may_be("x"));
        const Arg mask = args.array(mask_out_, mask_spec(out("mask_out").optional(), mask_elements(x, ntf), "N·F"));
        args.check_overlap();
        const dropout::Stream s{seed, offset, threshold};
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          dropout::variational<T>(y.as<T>(), mask.as<uint8_t>(), false, x.as<T>(), x.dim(0), x.dim(1), x.dim(2), ntf, s,
                                  scale);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("mask_out"), py::arg("ntf"), py::arg("seed"), py::arg("offset"),
      py::arg("threshold"), py::arg("scale"),
      "Variational dropout of x (T, N, F), or (N, T, F) with ntf: one mask bit per (n, f) for every t.");

  m.def(
      "variational_dropout_backward",
      [](py::handle dy_, py::handle out_, py::handle mask_, bool ntf, uint64_t seed, uint64_t offset,
         uint32_t threshold, double scale) {
        Args args;
        const Arg dy = args.array(dy_, in("dy").ndim(3, layout(ntf)));
        const Arg dx = args.array(out_, out("out").shape(dy.shape(), "the shape of dy").may_be("dy"));
        const Arg mask = args.array(mask_, mask_spec(in("mask").optional(), mask_elements(dy, ntf), "N·F"));
        args.check_overlap();
        const dropout::Stream s{seed, offset, threshold};
        // The mask is only read when given; the driver draws into scratch otherwise.
        uint8_t* mp = mask.as<uint8_t>();
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          dropout::variational<T>(dx.as<T>(), mp, mp != nullptr, dy.as<T>(), dy.dim(0), dy.dim(1), dy.dim(2), ntf, s,
                                  scale);
        });
      },
      py::arg("dy"), py::arg("out"), py::arg("mask"), py::arg("ntf"), py::arg("seed"), py::arg("offset"),
      py::arg("threshold"), py::arg("scale"),
      "Gradient of variational_dropout_forward: dy masked by the packed mask or, if None, by (seed, offset).");
}

}  // namespace nndl::bind
