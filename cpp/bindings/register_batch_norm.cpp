// nndl_fast._core batch norm: forward (training / inference) and backward, into caller-given
// or fresh outputs. Hyper-parameters are checked, and the running-average factor resolved, in
// python/nndl_fast/norm/batch_norm.py; the drivers are in norm/batch_norm.hpp.
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "norm/batch_norm.hpp"

namespace nndl::bind {
namespace {

const char* const kLayouts = "((N, C, ...) or, channels_last, (N, ..., C))";

// x checked, and what the per-channel arguments must look like.
struct BnInput {
  Arg x;
  norm::BnPlan plan;
  std::vector<int64_t> per_channel;  // {C}: the input's channels
  std::string channel_what;
};

BnInput bn_input(Args& args, py::handle x_, bool channels_last) {
  BnInput b;
  b.x = args.array(x_, in("x").ndim_at_least(2, kLayouts));
  const std::vector<int64_t> shape = b.x.shape();
  const bool last = shape.size() > 2 && channels_last;
  b.per_channel = {last ? shape.back() : shape[1]};
  b.plan = norm::bn_plan_of_shape(shape.data(), b.x.ndim(), channels_last);
  b.channel_what = std::string("(C,) with C = x.shape[") + (last ? "-1] (channels_last)" : "1]");
  return b;
}

// Training updates the running statistics in place (when given); inference reads them.
Spec running_stat(const char* name, bool training) { return training ? out(name).optional() : in(name); }

py::tuple batch_norm_forward(py::handle x_, py::handle gamma_, py::handle beta_, py::handle running_mean_,
                             py::handle running_var_, py::handle y_, py::handle save_mean_, py::handle save_rstd_,
                             py::handle workspace_, bool channels_last, bool training, double eps, double factor,
                             bool unbiased) {
  Args args;
  const BnInput bx = bn_input(args, x_, channels_last);
  const auto& pc = bx.per_channel;
  const std::string& what = bx.channel_what;
  const Arg gamma = args.array(gamma_, in("gamma").optional().shape(pc, what));
  const Arg beta = args.array(beta_, in("beta").optional().shape(pc, what));
  const Arg rmean = args.array(running_mean_, running_stat("running_mean", training).shape(pc, what));
  const Arg rvar = args.array(running_var_, running_stat("running_var", training).shape(pc, what));
  if (rmean.present() != rvar.present())
    throw py::value_error("running_mean and running_var must be given together (or both None)");
  const Arg y = args.output(y_, out("out[0]").shape(bx.x.shape(), "the shape of x"));
  const Arg smean = args.output(save_mean_, out("out[1]").shape(pc, what));
  const Arg srstd = args.output(save_rstd_, out("out[2]").shape(pc, what));
  const norm::BnPlan& p = bx.plan;
  if (training && unbiased && p.outer * p.fold * p.inner == 1)  // m − 1 = 0: no unbiased variance
    throw py::value_error("Expected more than 1 value per channel when training, got input of shape " +
                          shape_str(bx.x.shape()));
  const Arg ws = args.workspace(workspace_, norm::bn_workspace_doubles(p));
  args.check_overlap();
  const norm::BnForwardOptions o{training, eps, factor, unbiased};
  with_dtype(args.dtype(), [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    norm::batch_norm_forward<T>(y.as<T>(), smean.as<T>(), srstd.as<T>(), rmean.as<T>(), rvar.as<T>(), bx.x.as<T>(),
                                gamma.as<T>(), beta.as<T>(), ws.as<double>(), o, p);
  });
  return py::make_tuple(y.array(), smean.array(), srstd.array());
}

py::tuple batch_norm_backward(py::handle dy_, py::handle x_, py::handle save_mean_, py::handle save_rstd_,
                              py::handle gamma_, py::handle dx_, py::handle dgamma_, py::handle dbeta_,
                              py::handle workspace_, bool channels_last, bool training) {
  Args args;
  const BnInput bx = bn_input(args, x_, channels_last);
  const auto& pc = bx.per_channel;
  const std::string& what = bx.channel_what;
  const Arg dy = args.array(dy_, in("dy").shape(bx.x.shape(), "the shape of x"));
  const Arg mean = args.array(save_mean_, in("save_mean").shape(pc, what));
  const Arg rstd = args.array(save_rstd_, in("save_rstd").shape(pc, what));
  const Arg gamma = args.array(gamma_, in("gamma").optional().shape(pc, what));
  const Arg dx = args.output(dx_, out("out[0]").shape(bx.x.shape(), "the shape of x"));
  const Arg dgamma = args.output(dgamma_, out("out[1]").shape(pc, what));
  const Arg dbeta = args.output(dbeta_, out("out[2]").shape(pc, what));
  const Arg ws = args.workspace(workspace_, norm::bn_workspace_doubles(bx.plan));
  args.check_overlap();
  with_dtype(args.dtype(), [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    norm::batch_norm_backward<T>(dx.as<T>(), dgamma.as<T>(), dbeta.as<T>(), dy.as<T>(), bx.x.as<T>(), mean.as<T>(),
                                 rstd.as<T>(), gamma.as<T>(), ws.as<double>(), training, bx.plan);
  });
  return py::make_tuple(dx.array(), dgamma.array(), dbeta.array());
}

int64_t batch_norm_workspace_size(const std::vector<int64_t>& shape, bool channels_last) {
  if (shape.size() < 2)
    throw py::value_error(std::string("shape must have at least 2 dimensions ") + kLayouts + ", got " +
                          shape_str(shape));
  checked_numel(shape, "shape");
  const int64_t doubles =
      norm::bn_workspace_doubles(norm::bn_plan_of_shape(shape.data(), int64_t(shape.size()), channels_last));
  if (doubles < 0) throw py::value_error("shape " + shape_str(shape) + " needs a workspace larger than fits in int64");
  return doubles;
}

}  // namespace

void register_batch_norm(py::module_& m) {
  m.def("batch_norm_forward", &batch_norm_forward, py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("out"), py::arg("save_mean"), py::arg("save_rstd"),
        py::arg("workspace"), py::arg("channels_last"), py::arg("training"), py::arg("eps"), py::arg("factor"),
        py::arg("unbiased"),
        "Batch-norm forward into out, save_mean, save_rstd (None: fresh); returns them "
        "(see nndl_fast.norm.batch_norm_forward).");
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("dy"), py::arg("x"), py::arg("save_mean"),
        py::arg("save_rstd"), py::arg("gamma"), py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"),
        py::arg("workspace"), py::arg("channels_last"), py::arg("training"),
        "Batch-norm backward into dx, dgamma, dbeta (None: fresh); returns them "
        "(see nndl_fast.norm.batch_norm_backward).");
  m.def("batch_norm_workspace_size", &batch_norm_workspace_size, py::arg("shape"), py::arg("channels_last"),
        "float64 elements of the workspace the batch-norm calls need for this shape.");
}

}  // namespace nndl::bind
