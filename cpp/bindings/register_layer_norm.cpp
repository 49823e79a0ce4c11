// nndl_fast._core layer norm: forward and backward into caller-given outputs. Checks of eps
// and of normalized_shape live in python/nndl_fast/norm/layer_norm.py.
#include <string>
#include <vector>

#include "bindings/norm_args.hpp"
#include "bindings/register.hpp"
#include "norm/layer_norm.hpp"

namespace nndl::bind {
namespace {

// x: (*lead, *trail) with len(trail) = normalized_ndim; seen as (rows, D).
struct LnInput {
  py::array x;
  DType dtype;
  std::vector<int64_t> shape, lead, trail;
  std::string trail_what, lead_what;  // the shapes the per-element and per-row arguments need
  norm::LnPlan plan;
};

LnInput ln_input(py::handle obj, int64_t normalized_ndim) {
  LnInput in;
  in.x = checked_array(obj, "x", false);
  in.dtype = dtype_of(in.x, "x");
  in.shape = shape_of(in.x);
  const int64_t nd = static_cast<int64_t>(in.shape.size());
  if (normalized_ndim < 1 || normalized_ndim > nd)
    throw py::value_error("normalized_shape has " + std::to_string(normalized_ndim) +
                          " dimensions but x has shape " + shape_str(in.shape));
  in.lead.assign(in.shape.begin(), in.shape.end() - normalized_ndim);
  in.trail.assign(in.shape.end() - normalized_ndim, in.shape.end());
  int64_t rows = 1, d = 1;
  for (int64_t v : in.lead) rows *= v;
  for (int64_t v : in.trail) d *= v;
  if (d == 0 && rows > 0) throw py::value_error("layer norm over an empty normalized_shape " + shape_str(in.trail));
  in.plan = norm::ln_plan(rows, d);
  in.trail_what = "normalized_shape = x.shape[-" + std::to_string(normalized_ndim) + ":]";
  in.lead_what = "x.shape[:-" + std::to_string(normalized_ndim) + "] (one per row)";
  return in;
}

void ln_forward(py::handle x_, int64_t normalized_ndim, py::handle gamma_, py::handle beta_, py::handle y_,
                py::handle mean_, py::handle rstd_, double eps) {
  const LnInput in = ln_input(x_, normalized_ndim);
  OverlapCheck ov;
  ov.add(in.x.data(), static_cast<int64_t>(in.x.nbytes()), false, "x");
  const DType dt = in.dtype;
  const std::string& tw = in.trail_what;
  const std::string& lw = in.lead_what;
  NormArg y = norm_arg(y_, "out", dt, "x", in.shape, "the shape of x", true, false, ov);
  NormArg gamma = norm_arg(gamma_, "gamma", dt, "x", in.trail, tw, false, true, ov);
  NormArg beta = norm_arg(beta_, "beta", dt, "x", in.trail, tw, false, true, ov);
  NormArg mean = norm_arg(mean_, "save_mean", dt, "x", in.lead, lw, true, false, ov);
  NormArg rstd = norm_arg(rstd_, "save_rstd", dt, "x", in.lead, lw, true, false, ov);
  ov.check();
  with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    const int64_t d = in.plan.d, phase = norm::line_phase(y.data, sizeof(T));
    std::vector<T> g_copy, b_copy;
    NNDL_DISPATCH(ln_forward<T>)(y.as<T>(), mean.as<T>(), rstd.as<T>(), static_cast<const T*>(in.x.data()),
                                 at_line_phase(gamma.as<T>(), d, phase, g_copy),
                                 at_line_phase(beta.as<T>(), d, phase, b_copy), eps, in.plan);
  });
}

void ln_backward(py::handle dy_, py::handle x_, py::handle mean_, py::handle rstd_, int64_t normalized_ndim,
                 py::handle gamma_, py::handle dx_, py::handle dgamma_, py::handle dbeta_, py::handle workspace_) {
  const LnInput in = ln_input(x_, normalized_ndim);
  OverlapCheck ov;
  ov.add(in.x.data(), static_cast<int64_t>(in.x.nbytes()), false, "x");
  const DType dt = in.dtype;
  const std::string& tw = in.trail_what;
  const std::string& lw = in.lead_what;
  NormArg dy = norm_arg(dy_, "dy", dt, "x", in.shape, "the shape of x", false, false, ov);
  NormArg mean = norm_arg(mean_, "save_mean", dt, "x", in.lead, lw, false, false, ov);
  NormArg rstd = norm_arg(rstd_, "save_rstd", dt, "x", in.lead, lw, false, false, ov);
  NormArg gamma = norm_arg(gamma_, "gamma", dt, "x", in.trail, tw, false, true, ov);
  NormArg dx = norm_arg(dx_, "dx", dt, "x", in.shape, "the shape of x", true, false, ov);
  NormArg dgamma = norm_arg(dgamma_, "dgamma", dt, "x", in.trail, tw, true, true, ov);
  NormArg dbeta = norm_arg(dbeta_, "dbeta", dt, "x", in.trail, tw, true, true, ov);
  const bool want_params = dgamma.data || dbeta.data;
  NormArg ws;
  if (want_params) ws = workspace_arg(workspace_, norm::ln_workspace_doubles(in.plan), ov);
  ov.check();
  with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    std::vector<T> g_copy;
    const T* g = at_line_phase(gamma.as<T>(), in.plan.d, norm::line_phase(dx.data, sizeof(T)), g_copy);
    NNDL_DISPATCH(ln_backward<T>)(dx.as<T>(), ws.as<double>(), dy.as<T>(), static_cast<const T*>(in.x.data()),
                                  mean.as<T>(), rstd.as<T>(), g, in.plan);
    if (want_params) NNDL_DISPATCH(ln_backward_finalize<T>)(dgamma.as<T>(), dbeta.as<T>(), ws.as<double>(), in.plan);
  });
}

}  // namespace

void register_layer_norm(py::module_& m) {
  m.def("ln_forward", &ln_forward, py::arg("x"), py::arg("normalized_ndim"), py::arg("gamma"), py::arg("beta"),
        py::arg("out"), py::arg("save_mean"), py::arg("save_rstd"), py::arg("eps"),
        "Layer-norm forward into out, save_mean, save_rstd (see nndl_fast.norm.layer_norm_forward).");
  m.def("ln_backward", &ln_backward, py::arg("dy"), py::arg("x"), py::arg("save_mean"), py::arg("save_rstd"),
        py::arg("normalized_ndim"), py::arg("gamma"), py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"),
        py::arg("workspace"),
        "Layer-norm backward into dx, dgamma, dbeta (see nndl_fast.norm.layer_norm_backward).");
  m.def(
      "ln_workspace_size",
      [](int64_t rows, int64_t d) { return norm::ln_workspace_doubles(norm::ln_plan(rows, d)); },
      py::arg("rows"), py::arg("d"), "float64 elements of the layer-norm backward's workspace.");
}

}  // namespace nndl::bind
