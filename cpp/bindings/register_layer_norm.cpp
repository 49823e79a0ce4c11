// nndl_fast._core layer norm: forward and backward into caller-given or fresh outputs. eps and
// normalized_shape are checked in python/nndl_fast/norm/layer_norm.py; the drivers are in
// norm/layer_norm.hpp.
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "norm/layer_norm.hpp"

namespace nndl::bind {
namespace {

// x: (*lead, *normalized_shape), seen as (rows, D); x checked, and what the per-element and
// per-row arguments must look like.
struct LnInput {
  Arg x;
  std::vector<int64_t> lead, trail;
  std::string trail_what, lead_what;
  norm::LnPlan plan;
};

LnInput ln_input(Args& args, py::handle x_, const std::vector<int64_t>& normalized_shape) {
  LnInput b;
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  b.x = args.array(x_, in("x").ndim_at_least(k, "(..., *normalized_shape)"));
  const std::vector<int64_t> shape = b.x.shape();
  b.lead.assign(shape.begin(), shape.end() - k);
  b.trail.assign(shape.end() - k, shape.end());
  if (b.trail != normalized_shape)
    throw py::value_error("x has shape " + shape_str(shape) +
                          ", whose trailing dimensions must equal "
                          "normalized_shape " +
                          shape_str(normalized_shape));
  b.plan = norm::ln_plan_of_shape(shape.data(), b.x.ndim(), k);
  b.trail_what = "normalized_shape = x.shape[-" + std::to_string(k) + ":]";
  b.lead_what = "x.shape[:-" + std::to_string(k) + "] (one per row)";
  return b;
}

py::tuple layer_norm_forward(py::handle x_, const std::vector<int64_t>& normalized_shape, py::handle gamma_,
                             py::handle beta_, py::handle y_, py::handle save_mean_, py::handle save_rstd_,
                             double eps) {
  Args args;
  const LnInput b = ln_input(args, x_, normalized_shape);
  const Arg gamma = args.array(gamma_, in("gamma").optional().shape(b.trail, b.trail_what));
  const Arg beta = args.array(beta_, in("beta").optional().shape(b.trail, b.trail_what));
  const Arg y = args.output(y_, out("out[0]").shape(b.x.shape(), "the shape of x"));
  const Arg mean = args.output(save_mean_, out("out[1]").shape(b.lead, b.lead_what));
  const Arg rstd = args.output(save_rstd_, out("out[2]").shape(b.lead, b.lead_what));
  args.check_overlap();
  with_dtype(args.dtype(), [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    norm::layer_norm_forward<T>(y.as<T>(), mean.as<T>(), rstd.as<T>(), b.x.as<T>(), gamma.as<T>(), beta.as<T>(), eps,
                                b.plan);
  });
  return py::make_tuple(y.array(), mean.array(), rstd.array());
}

py::tuple layer_norm_backward(py::handle dy_, py::handle x_, py::handle save_mean_, py::handle save_rstd_,
                              const std::vector<int64_t>& normalized_shape, py::handle gamma_, py::handle dx_,
                              py::handle dgamma_, py::handle dbeta_, py::handle workspace_, bool param_grads) {
  Args args;
  const LnInput b = ln_input(args, x_, normalized_shape);
  const Arg dy = args.array(dy_, in("dy").shape(b.x.shape(), "the shape of x"));
  const Arg mean = args.array(save_mean_, in("save_mean").shape(b.lead, b.lead_what));
  const Arg rstd = args.array(save_rstd_, in("save_rstd").shape(b.lead, b.lead_what));
  const Arg gamma = args.array(gamma_, in("gamma").optional().shape(b.trail, b.trail_what));
  const Arg dx = args.output(dx_, out("out[0]").shape(b.x.shape(), "the shape of x"));
  Arg dgamma, dbeta, ws;
  if (param_grads) {
    dgamma = args.output(dgamma_, out("out[1]").shape(b.trail, b.trail_what));
    dbeta = args.output(dbeta_, out("out[2]").shape(b.trail, b.trail_what));
    ws = args.workspace(workspace_, norm::ln_workspace_doubles(b.plan));
  }
  args.check_overlap();
  with_dtype(args.dtype(), [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    norm::layer_norm_backward<T>(dx.as<T>(), dgamma.as<T>(), dbeta.as<T>(), dy.as<T>(), b.x.as<T>(), mean.as<T>(),
                                 rstd.as<T>(), gamma.as<T>(), ws.as<double>(), b.plan);
  });
  return py::make_tuple(dx.array(), param_grads ? py::object(dgamma.array()) : py::none(),
                        param_grads ? py::object(dbeta.array()) : py::none());
}

int64_t layer_norm_workspace_size(const std::vector<int64_t>& shape, int64_t normalized_ndim) {
  if (normalized_ndim < 1 || normalized_ndim > static_cast<int64_t>(shape.size()))
    throw py::value_error("normalized_shape has " + std::to_string(normalized_ndim) + " dimensions but shape is " +
                          shape_str(shape));
  checked_numel(shape, "shape");
  const int64_t doubles =
      norm::ln_workspace_doubles(norm::ln_plan_of_shape(shape.data(), int64_t(shape.size()), normalized_ndim));
  if (doubles < 0) throw py::value_error("shape " + shape_str(shape) + " needs a workspace larger than fits in int64");
  return doubles;
}

}  // namespace

void register_layer_norm(py::module_& m) {
  m.def("layer_norm_forward", &layer_norm_forward, py::arg("x"), py::arg("normalized_shape"), py::arg("gamma"),
        py::arg("beta"), py::arg("out"), py::arg("save_mean"), py::arg("save_rstd"), py::arg("eps"),
        "Layer-norm forward into out, save_mean, save_rstd (None: fresh); returns them "
        "(see nndl_fast.norm.layer_norm_forward).");
  m.def("layer_norm_backward", &layer_norm_backward, py::arg("dy"), py::arg("x"), py::arg("save_mean"),
        py::arg("save_rstd"), py::arg("normalized_shape"), py::arg("gamma"), py::arg("dx"), py::arg("dgamma"),
        py::arg("dbeta"), py::arg("workspace"), py::arg("param_grads"),
        "Layer-norm backward into dx and (param_grads) dgamma, dbeta (None: fresh); returns them "
        "(see nndl_fast.norm.layer_norm_backward).");
  m.def("layer_norm_workspace_size", &layer_norm_workspace_size, py::arg("shape"), py::arg("normalized_ndim"),
        "float64 elements of the layer-norm backward's workspace for an x of this shape.");
}

}  // namespace nndl::bind
