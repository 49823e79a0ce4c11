// nndl_fast._core batch norm: forward (training / inference) and backward, into caller-given
// outputs. Hyper-parameters are checked and the running-average factor is resolved in
// python/nndl_fast/norm/batch_norm.py.
#include <cmath>

#include <pybind11/stl.h>

#include "bindings/norm_args.hpp"
#include "bindings/register.hpp"
#include "norm/batch_norm.hpp"

namespace nndl::bind {
namespace {

struct BnInput {
  py::array x;
  DType dtype;
  std::vector<int64_t> shape;
  norm::BnPlan plan;
  std::vector<int64_t> per_channel;  // {C}
  std::string channel_what;
};

// x as (outer, C, inner): see norm/norm_plan.hpp.
norm::BnPlan plan_for(const std::vector<int64_t>& shape, bool channels_last, const std::string& name) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (nd < 2)
    throw py::value_error(name + " must have at least 2 dimensions, (N, C, ...) or (N, ..., C); got shape " +
                          shape_str(shape));
  int64_t outer = shape[0], channels, inner = 1;
  if (nd == 2 || !channels_last) {
    channels = shape[1];
    for (int64_t d = 2; d < nd; ++d) inner *= shape[d];
  } else {
    channels = shape[nd - 1];
    for (int64_t d = 1; d < nd - 1; ++d) outer *= shape[d];
  }
  return norm::bn_plan(outer, channels, inner);
}

BnInput bn_input(py::handle obj, const char* name, bool channels_last) {
  BnInput in;
  in.x = checked_array(obj, name, false);
  in.dtype = dtype_of(in.x, name);
  in.shape = shape_of(in.x);
  in.plan = plan_for(in.shape, channels_last, name);
  in.per_channel = {in.plan.channels / in.plan.fold};  // the input's channels (see BnPlan::fold)
  in.channel_what = std::string("(C,) with C = ") + name +
                    (in.shape.size() > 2 && channels_last ? ".shape[-1] (channels_last)" : ".shape[1]");
  return in;
}

void bn_forward(py::handle x_, py::handle gamma_, py::handle beta_, py::handle running_mean_,
                py::handle running_var_, py::handle y_, py::handle save_mean_, py::handle save_invstd_,
                py::handle workspace_, bool channels_last, bool training, double eps, double factor,
                bool unbiased) {
  const BnInput in = bn_input(x_, "x", channels_last);
  const norm::BnPlan& p = in.plan;
  OverlapCheck ov;
  ov.add(in.x.data(), static_cast<int64_t>(in.x.nbytes()), false, "x");
  const DType dt = in.dtype;
  const auto& pc = in.per_channel;
  const std::string& what = in.channel_what;
  NormArg y = norm_arg(y_, "out", dt, "x", in.shape, "the shape of x", true, false, ov);
  NormArg gamma = norm_arg(gamma_, "gamma", dt, "x", pc, what, false, true, ov);
  NormArg beta = norm_arg(beta_, "beta", dt, "x", pc, what, false, true, ov);
  // Training updates the running statistics in place (when given); inference reads them.
  NormArg rmean = norm_arg(running_mean_, "running_mean", dt, "x", pc, what, training, training, ov);
  NormArg rvar = norm_arg(running_var_, "running_var", dt, "x", pc, what, training, training, ov);
  if ((rmean.data == nullptr) != (rvar.data == nullptr))
    throw py::value_error("running_mean and running_var must be given together (or both None)");
  NormArg smean = norm_arg(save_mean_, "save_mean", dt, "x", pc, what, true, false, ov);
  NormArg sinv = norm_arg(save_invstd_, "save_invstd", dt, "x", pc, what, true, false, ov);
  const int64_t m = p.outer * p.fold * p.inner;
  if (training && m == 1)
    throw py::value_error("Expected more than 1 value per channel when training, got input of shape " +
                          shape_str(in.shape));
  NormArg ws = workspace_arg(workspace_, norm::bn_workspace_doubles(p), ov);
  ov.check();

  with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const norm::BnScratch scratch = norm::bn_scratch(ws.as<double>(), p);
    double* partial = scratch.partial;
    // μ, γ·invstd, β of type T, at the line phase of y's rows (see norm::line_phase).
    T* coef = static_cast<T*>(scratch.coef) + norm::line_phase(y.data, sizeof(T));
    py::gil_scoped_release nogil;
    const int64_t C = pc[0], W = p.channels;  // the input's channels, the kernels' (W = C·fold)
    if (training && m == 0) {
      // An empty batch (as torch.nn.functional.batch_norm): empty output, running statistics
      // untouched, no statistics to save (zeros).
      for (int64_t c = 0; c < C; ++c) smean.as<T>()[c] = T(0), sinv.as<T>()[c] = T(0);
      return;
    }
    if (training) {
      NNDL_DISPATCH(bn_stats<T>)(partial, static_cast<const T*>(in.x.data()), p);
      NNDL_DISPATCH(bn_stats_finalize<T>)(smean.as<T>(), sinv.as<T>(), coef, rmean.as<T>(), rvar.as<T>(), partial,
                                          gamma.as<T>(), beta.as<T>(), eps, factor, unbiased, p);
    } else {  // population statistics (the running averages), no reduction
      for (int64_t c = 0; c < C; ++c) {
        const double invstd = 1.0 / std::sqrt(double(rvar.as<T>()[c]) + eps);
        smean.as<T>()[c] = rmean.as<T>()[c];
        sinv.as<T>()[c] = T(invstd);
        for (int64_t w = c; w < W; w += C) {  // every kernel channel of input channel c
          coef[w] = rmean.as<T>()[c];
          coef[W + w] = T((gamma.data ? double(gamma.as<T>()[c]) : 1.0) * invstd);
          coef[2 * W + w] = beta.data ? beta.as<T>()[c] : T(0);
        }
      }
    }
    NNDL_DISPATCH(bn_apply<T>)(y.as<T>(), static_cast<const T*>(in.x.data()), coef, p);
  });
}

void bn_backward(py::handle dy_, py::handle x_, py::handle mean_, py::handle invstd_, py::handle gamma_,
                 py::handle dx_, py::handle dgamma_, py::handle dbeta_, py::handle workspace_,
                 bool channels_last, bool training) {
  const BnInput in = bn_input(x_, "x", channels_last);
  const norm::BnPlan& p = in.plan;
  OverlapCheck ov;
  ov.add(in.x.data(), static_cast<int64_t>(in.x.nbytes()), false, "x");
  const DType dt = in.dtype;
  const auto& pc = in.per_channel;
  const std::string& what = in.channel_what;
  NormArg dy = norm_arg(dy_, "dy", dt, "x", in.shape, "the shape of x", false, false, ov);
  NormArg mean = norm_arg(mean_, "save_mean", dt, "x", pc, what, false, false, ov);
  NormArg invstd = norm_arg(invstd_, "save_invstd", dt, "x", pc, what, false, false, ov);
  NormArg gamma = norm_arg(gamma_, "gamma", dt, "x", pc, what, false, true, ov);
  NormArg dx = norm_arg(dx_, "dx", dt, "x", in.shape, "the shape of x", true, false, ov);
  NormArg dgamma = norm_arg(dgamma_, "dgamma", dt, "x", pc, what, true, true, ov);
  NormArg dbeta = norm_arg(dbeta_, "dbeta", dt, "x", pc, what, true, true, ov);
  NormArg ws = workspace_arg(workspace_, norm::bn_workspace_doubles(p), ov);
  ov.check();

  with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const norm::BnScratch scratch = norm::bn_scratch(ws.as<double>(), p);
    double* partial = scratch.partial;
    T* coef = static_cast<T*>(scratch.coef);
    const T* x = static_cast<const T*>(in.x.data());
    py::gil_scoped_release nogil;
    // The reduction pass reads μ per kernel channel: fold copies of it (see BnPlan::fold).
    const int64_t C = pc[0], W = p.channels;
    std::vector<T> mean_w;
    for (int64_t w = 0; p.fold > 1 && w < W; ++w) mean_w.push_back(mean.as<T>()[w % C]);
    const T* mu = p.fold > 1 ? mean_w.data() : mean.as<T>();
    if (training) {  // gradient through μ_B and σ²_B: reductions first, then dx
      const int64_t phase = norm::line_phase(dx.data, sizeof(T));
      NNDL_DISPATCH(bn_backward_reduce<T>)(partial, nullptr, dy.as<T>(), x, mu, nullptr, p);
      NNDL_DISPATCH(bn_backward_finalize<T>)(dgamma.as<T>(), dbeta.as<T>(), coef, partial, gamma.as<T>(),
                                             mean.as<T>(), invstd.as<T>(), p, phase);
      NNDL_DISPATCH(bn_backward_dx<T>)(dx.as<T>(), dy.as<T>(), x, coef, p, phase);
    } else {  // fixed statistics: dx = dy·γ·invstd, written in the reduction pass
      for (int64_t w = 0; w < W; ++w)
        coef[w] = T((gamma.data ? double(gamma.as<T>()[w % C]) : 1.0) * double(invstd.as<T>()[w % C]));
      NNDL_DISPATCH(bn_backward_reduce<T>)(partial, dx.as<T>(), dy.as<T>(), x, mu, coef, p);
      NNDL_DISPATCH(bn_backward_finalize<T>)(dgamma.as<T>(), dbeta.as<T>(), nullptr, partial, gamma.as<T>(),
                                             mean.as<T>(), invstd.as<T>(), p, 0);
    }
  });
}

}  // namespace

void register_batch_norm(py::module_& m) {
  m.def("bn_forward", &bn_forward, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
        py::arg("running_var"), py::arg("out"), py::arg("save_mean"), py::arg("save_invstd"),
        py::arg("workspace"), py::arg("channels_last"), py::arg("training"), py::arg("eps"),
        py::arg("factor"), py::arg("unbiased"),
        "Batch-norm forward into out, save_mean, save_invstd (see nndl_fast.norm.batch_norm_forward).");
  m.def("bn_backward", &bn_backward, py::arg("dy"), py::arg("x"), py::arg("save_mean"), py::arg("save_invstd"),
        py::arg("gamma"), py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"), py::arg("workspace"),
        py::arg("channels_last"), py::arg("training"),
        "Batch-norm backward into dx, dgamma, dbeta (see nndl_fast.norm.batch_norm_backward).");
  m.def(
      "bn_workspace_size",
      [](const std::vector<int64_t>& shape, bool channels_last) {
        return norm::bn_workspace_doubles(plan_for(shape, channels_last, "shape"));
      },
      py::arg("shape"), py::arg("channels_last"),
      "float64 elements of the workspace the batch-norm calls need for this shape.");
}

}  // namespace nndl::bind
