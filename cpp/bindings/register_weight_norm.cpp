// nndl_fast._core weight normalisation (1.55): forward and backward into caller-given outputs.
// The public API (allocation, torch-style g shapes) is python/nndl_fast/norm/weight_norm.py;
// arrays are checked here, by Args; cpp/norm/weight_norm_driver.hpp runs the call.
#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "norm/weight_norm_driver.hpp"

namespace nndl::bind {

namespace {

// v: (rows, ...) -> rows = v.shape[0], cols = product of the other sizes.
struct RowsCols {
  int64_t rows, cols;
};

RowsCols rows_cols(const Arg& v) {
  int64_t cols = 1;
  for (int64_t d = 1; d < v.ndim(); ++d) cols *= v.dim(d);
  return {v.dim(0), cols};
}

const char* const kGainWhat = "one gain per row of v (v.shape[0])";

}  // namespace

void register_weight_norm(py::module_& m) {
  m.def(
      "weight_norm_forward",
      [](py::handle out_, py::handle v_, py::handle g_) {
        Args args;
        const Arg v = args.array(v_, in("v").ndim_at_least(1, "(out_features, ...)"));
        const Arg g = args.array(g_, in("g").shape({v.dim(0)}, kGainWhat));
        const Arg w = args.array(out_, out("out").shape(v.shape(), "the shape of v"));
        args.check_overlap();
        const RowsCols rc = rows_cols(v);
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          norm::weight_norm_forward<T>(w.as<T>(), v.as<T>(), g.as<T>(), rc.rows, rc.cols);
        });
      },
      py::arg("out"), py::arg("v"), py::arg("g"), "out = g_i v_i / ||v_i|| per row (see nndl_fast.norm.weight_norm).");

  m.def(
      "weight_norm_backward",
      [](py::handle dv_, py::handle dg_, py::handle dy_, py::handle v_, py::handle g_) {
        Args args;
        const Arg v = args.array(v_, in("v").ndim_at_least(1, "(out_features, ...)"));
        const Arg g = args.array(g_, in("g").shape({v.dim(0)}, kGainWhat));
        const Arg dy = args.array(dy_, in("dy").shape(v.shape(), "the shape of v"));
        const Arg dv = args.array(dv_, out("out[0]").shape(v.shape(), "the shape of v"));
        const Arg dg = args.array(dg_, out("out[1]").shape(g.shape(), "the shape of g"));
        args.check_overlap();
        const RowsCols rc = rows_cols(v);
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          norm::weight_norm_backward<T>(dv.as<T>(), dg.as<T>(), dy.as<T>(), v.as<T>(), g.as<T>(), rc.rows, rc.cols);
        });
      },
      py::arg("dv"), py::arg("dg"), py::arg("dy"), py::arg("v"), py::arg("g"),
      "Gradients of weight_norm_forward w.r.t. v and g, written into dv and dg.");
}

}  // namespace nndl::bind
