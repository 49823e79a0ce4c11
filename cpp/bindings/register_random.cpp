// nndl_fast._core random fills (uniform, normal and truncated normal from (seed, offset)) and
// the deterministic fills of nndl_fast.init (constant, eye, assign). Bounds, std and seeds are
// checked in python/nndl_fast/random.py and init.py; the arrays here, by Args.
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "rng/random_driver.hpp"

namespace nndl::bind {
namespace {

// The array to fill, written in place and named `name` in errors. shape (when given): the
// shape it must have; dtype: "" (float32 or float64), "float32" or "float64".
Spec target(const std::string& name, const std::optional<std::vector<int64_t>>& shape, const std::string& dtype) {
  Spec s = out(name);
  if (shape) s = s.shape(*shape, "shape");
  if (dtype == "float32") s = s.float32();
  if (dtype == "float64") s = s.float64();
  return s;
}

void fill(py::handle a_, const std::string& name, const std::optional<std::vector<int64_t>>& shape,
          const std::string& dtype, const rng::Fill& f) {
  Args args;
  const Arg a = args.array(a_, target(name, shape, dtype));
  if (a.array().dtype().is(py::dtype::of<float>())) {
    py::gil_scoped_release nogil;
    rng::fill<float>(a.as<float>(), a.size(), f);
  } else {
    py::gil_scoped_release nogil;
    rng::fill<double>(a.as<double>(), a.size(), f);
  }
}

#define NNDL_FILL_ARGS                                                                                   \
  py::arg("a"), py::arg("name"), py::arg("shape"), py::arg("dtype"), py::arg("seed"), py::arg("offset"), \
      py::arg("start")
using Shape = std::optional<std::vector<int64_t>>;

}  // namespace

void register_random(py::module_& m) {
  m.def(
      "uniform_fill",
      [](py::handle a, const std::string& name, const Shape& shape, const std::string& dtype, uint64_t seed,
         uint64_t offset, uint64_t start, double low,
         double high) { fill(a, name, shape, dtype, rng::uniform(seed, offset, start, low, high)); },
      NNDL_FILL_ARGS, py::arg("low"), py::arg("high"),
      "a ← U[low, high): element i draws x_{start + i} of (seed, offset). name: the array's name in errors; "
      "shape, dtype: what it must have (None, '': any).");
  m.def(
      "normal_fill",
      [](py::handle a, const std::string& name, const Shape& shape, const std::string& dtype, uint64_t seed,
         uint64_t offset, uint64_t start, double mean,
         double std) { fill(a, name, shape, dtype, rng::normal(seed, offset, start, mean, std)); },
      NNDL_FILL_ARGS, py::arg("mean"), py::arg("std"),
      "a ← N(mean, std²) (Box–Muller) from (seed, offset, start + i).");
  m.def(
      "truncated_normal_fill",
      [](py::handle a, const std::string& name, const Shape& shape, const std::string& dtype, uint64_t seed,
         uint64_t offset, uint64_t start, double mean, double std, double low, double high) {
        fill(a, name, shape, dtype, rng::truncated_normal(seed, offset, start, mean, std, low, high));
      },
      NNDL_FILL_ARGS, py::arg("mean"), py::arg("std"), py::arg("low"), py::arg("high"),
      "a ← N(mean, std²) truncated to [mean + low·std, mean + high·std] (inverse CDF) from (seed, offset, start + i).");
  m.def(
      "constant_fill",
      [](py::handle a_, const std::string& name, double value) {
        Args args;
        const Arg a = args.array(a_, out(name));
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          rng::fill_constant<T>(a.as<T>(), a.size(), value);
        });
      },
      py::arg("a"), py::arg("name"), py::arg("value"), "a ← value");
  m.def(
      "eye_fill",
      [](py::handle a_, const std::string& name) {
        Args args;
        const Arg a = args.array(a_, out(name).ndim(2, "2-D (rows, cols)"));
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          rng::fill_eye<T>(a.as<T>(), a.dim(0), a.dim(1));
        });
      },
      py::arg("a"), py::arg("name"), "a ← the identity matrix (2-D a)");
  m.def(
      "assign_fill",
      [](py::handle a_, const std::string& name, py::handle src_) {
        Args args;
        const Arg a = args.array(a_, out(name));
        const Arg src = args.array(src_, in("src").float64().shape(a.shape(), "the shape of " + name));
        args.check_overlap();
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          rng::assign<T>(a.as<T>(), src.as<double>(), a.size());
        });
      },
      py::arg("a"), py::arg("name"), py::arg("src"), "a ← src (float64, a's shape) rounded to a's dtype");
}

}  // namespace nndl::bind
