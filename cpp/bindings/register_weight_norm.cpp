// nndl_fast._core weight normalisation (1.55): forward and backward into caller-given outputs.
// The public API (allocation, torch-style g shapes) is python/nndl_fast/norm/weight_norm.py.
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/register.hpp"
#include "norm/weight_norm.hpp"

namespace nndl::bind {

namespace {

struct RowsCols {
  int64_t rows, cols;
};

// v: (rows, ...) -> rows = v.shape[0], cols = product of the other sizes.
RowsCols rows_cols(const py::array& v) {
  require_min_ndim(v, 1, "v", "(out_features, ...)");
  int64_t cols = 1;
  for (py::ssize_t d = 1; d < v.ndim(); ++d) cols *= v.shape(d);
  return {static_cast<int64_t>(v.shape(0)), cols};
}

int64_t chunks(int64_t cols) {
  return cols <= norm::kWeightNormChunk ? 1 : (cols + norm::kWeightNormChunk - 1) / norm::kWeightNormChunk;
}

void add(OverlapCheck& o, const py::array& a, bool written, const char* label) {
  o.add(a.data(), static_cast<int64_t>(a.nbytes()), written, label);
}

}  // namespace

void register_weight_norm(py::module_& m) {
  m.def(
      "weight_norm_forward",
      [](py::handle out, py::handle v, py::handle g) {
        const py::array va = checked_array(v, "v", false);
        const DType dt = dtype_of(va, "v");
        const RowsCols rc = rows_cols(va);
        const py::array ga = checked_array(g, "g", false);
        require_dtype(ga, dt, "g", "v");
        require_shape(ga, {va.shape(0)}, "g", "one gain per row of v (v.shape[0])");
        py::array wa = checked_array(out, "out", true, &va, "v");
        require_dtype(wa, dt, "out", "v");
        OverlapCheck o;
        add(o, va, false, "v");
        add(o, ga, false, "g");
        add(o, wa, true, "out");
        o.check();
        const int64_t nch = chunks(rc.cols);
        std::vector<double> partial(nch > 1 ? static_cast<size_t>(rc.rows * nch) : 0);
        with_dtype(dt, [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(weight_norm_forward<T>)(static_cast<T*>(wa.mutable_data()), partial.data(),
                                                static_cast<const T*>(va.data()),
                                                static_cast<const T*>(ga.data()), rc.rows, rc.cols);
        });
      },
      py::arg("out"), py::arg("v"), py::arg("g"),
      "out = g_i v_i / ||v_i|| per row (see nndl_fast.norm.weight_norm).");

  m.def(
      "weight_norm_backward",
      [](py::handle out_v, py::handle out_g, py::handle grad_w, py::handle v, py::handle g) {
        const py::array va = checked_array(v, "v", false);
        const DType dt = dtype_of(va, "v");
        const RowsCols rc = rows_cols(va);
        const py::array ga = checked_array(g, "g", false);
        require_dtype(ga, dt, "g", "v");
        require_shape(ga, {va.shape(0)}, "g", "one gain per row of v (v.shape[0])");
        const py::array gwa = checked_array(grad_w, "grad_w", false, &va, "v");
        require_dtype(gwa, dt, "grad_w", "v");
        py::array ova = checked_array(out_v, "out_v", true, &va, "v");
        require_dtype(ova, dt, "out_v", "v");
        py::array oga = checked_array(out_g, "out_g", true, &ga, "g");
        require_dtype(oga, dt, "out_g", "v");
        OverlapCheck o;
        add(o, va, false, "v");
        add(o, ga, false, "g");
        add(o, gwa, false, "grad_w");
        add(o, ova, true, "out_v");
        add(o, oga, true, "out_g");
        o.check();
        const int64_t nch = chunks(rc.cols);
        std::vector<double> partial(nch > 1 ? static_cast<size_t>(2 * rc.rows * nch) : 0);
        with_dtype(dt, [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(weight_norm_backward<T>)(
              static_cast<T*>(ova.mutable_data()), static_cast<T*>(oga.mutable_data()), partial.data(),
              static_cast<const T*>(gwa.data()), static_cast<const T*>(va.data()),
              static_cast<const T*>(ga.data()), rc.rows, rc.cols);
        });
      },
      py::arg("out_v"), py::arg("out_g"), py::arg("grad_w"), py::arg("v"), py::arg("g"),
      "Gradients of weight_norm_forward w.r.t. v and g, written into out_v and out_g.");
}

}  // namespace nndl::bind
