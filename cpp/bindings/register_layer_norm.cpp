// nndl_fast._core layer norm: forward and backward into caller-given or fresh outputs. eps and
// normalized_shape are checked in python/nndl_fast/norm/layer_norm.py; the drivers are in
// norm/layer_norm.hpp.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "norm/layer_norm.hpp"

namespace nndl::bind {
namespace {

// x: (*lead, *block, *trail), normalised over the contiguous block of axes: the trailing
// normalized_shape (torch), or `axes` (Keras's list; with to_end, ONNX's first axis and every
// later one), negative axes counting from the end. Seen as (outer, D, inner).
struct LnInput {
  Arg x;
  std::vector<int64_t> block, lead;  // the block's shape; the shape of x without the block
  std::string block_what, lead_what;
  norm::LnPlan plan;
};

LnInput ln_input(Args& args, py::handle x_, const std::optional<std::vector<int64_t>>& normalized_shape,
                 const std::vector<int64_t>& axes, bool to_end) {
  LnInput b;
  int64_t first = 0, last = 0;
  std::vector<int64_t> shape;
  if (normalized_shape) {
    const int64_t k = static_cast<int64_t>(normalized_shape->size());
    b.x = args.array(x_, in("x").ndim_at_least(k, "(..., *normalized_shape)"));
    shape = b.x.shape();
    first = b.x.ndim() - k, last = b.x.ndim() - 1;
    if (!std::equal(shape.begin() + first, shape.end(), normalized_shape->begin()))
      throw py::value_error("x has shape " + shape_str(shape) +
                            ", whose trailing dimensions must equal "
                            "normalized_shape " +
                            shape_str(*normalized_shape));
    b.block_what = "normalized_shape = x.shape[-" + std::to_string(k) + ":]";
  } else {
    b.x = args.array(x_, in("x").ndim_at_least(1, "(..., normalised axes, ...)"));
    shape = b.x.shape();
    const int64_t nd = b.x.ndim();
    std::vector<int64_t> ax;
    for (int64_t a : axes) {
      if (a < -nd || a >= nd)
        throw py::value_error("axis " + std::to_string(a) + " is out of range for x of " + std::to_string(nd) +
                              " dimensions");
      ax.push_back(a < 0 ? a + nd : a);
    }
    std::sort(ax.begin(), ax.end());
    if (std::adjacent_find(ax.begin(), ax.end()) != ax.end())
      throw py::value_error("axis " + shape_str(axes) + " names an axis twice");
    first = ax.front(), last = to_end ? nd - 1 : ax.back();
    if (!to_end && last - first + 1 != static_cast<int64_t>(ax.size()))
      throw py::value_error("axis " + shape_str(axes) + " must be a contiguous block of axes of x (shape " +
                            shape_str(shape) + ")");
    b.block_what = "x.shape[" + std::to_string(first) + ":" + std::to_string(last + 1) +
                   "] (the normalised axes, axis " + shape_str(axes) + ")";
  }
  int64_t outer = 1, d = 1, inner = 1;
  for (int64_t k = 0; k < b.x.ndim(); ++k) {
    if (k < first)
      outer *= shape[k], b.lead.push_back(shape[k]);
    else if (k <= last)
      d *= shape[k], b.block.push_back(shape[k]);
    else
      inner *= shape[k], b.lead.push_back(shape[k]);
  }
  b.plan = norm::ln_plan_strided(outer, d, inner);
  b.lead_what = normalized_shape
                    ? "the shape of x without the normalised axes (one per row)"
                    : "the shape of x without the normalised axes (axis " + shape_str(axes) + "; one per row)";
  return b;
}

// gamma / beta / their gradients: the block's shape, or (broadcast) one that broadcasts to it.
std::vector<int64_t> param_map(const Arg& a, const LnInput& b, const char* name) {
  if (!a.present()) return {};
  const std::vector<int64_t> s = a.shape();
  bool ok = s.size() <= b.block.size();
  for (size_t k = 0; ok && k < s.size(); ++k) {
    const int64_t bd = b.block[b.block.size() - s.size() + k];
    ok = s[k] == 1 || s[k] == bd;
  }
  if (!ok)
    throw py::value_error(std::string(name) + " has shape " + shape_str(s) + ", which does not broadcast to " +
                          b.block_what + " " + shape_str(b.block));
  return norm::ln_param_map(b.block, s);
}

// A per-element parameter: the block's shape or, with broadcast (ONNX), any shape broadcasting to it.
Spec param_spec(Spec s, const LnInput& b, bool broadcast) { return broadcast ? s : s.shape(b.block, b.block_what); }

py::tuple layer_norm_forward(py::handle x_, const std::optional<std::vector<int64_t>>& normalized_shape,
                             const std::vector<int64_t>& axes, bool to_end, bool broadcast, py::handle gamma_,
                             py::handle beta_, py::handle y_, py::handle save_mean_, py::handle save_rstd_,
                             double eps) {
  Args args;
  const LnInput b = ln_input(args, x_, normalized_shape, axes, to_end);
  const Arg gamma = args.array(gamma_, param_spec(in("gamma").optional(), b, broadcast));
  const Arg beta = args.array(beta_, param_spec(in("beta").optional(), b, broadcast));
  const std::vector<int64_t> gmap = param_map(gamma, b, "gamma"), bmap = param_map(beta, b, "beta");
  const Arg y = args.output(y_, out("out[0]").shape(b.x.shape(), "the shape of x"));
  const Arg mean = args.output(save_mean_, out("out[1]").shape(b.lead, b.lead_what));
  const Arg rstd = args.output(save_rstd_, out("out[2]").shape(b.lead, b.lead_what));
  args.check_overlap();
  with_dtype(args.dtype(), [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    norm::layer_norm_forward<T>(y.as<T>(), mean.as<T>(), rstd.as<T>(), b.x.as<T>(), gamma.as<T>(), gmap, beta.as<T>(),
                                bmap, eps, b.plan);
  });
  return py::make_tuple(y.array(), mean.array(), rstd.array());
}

// dgamma: given, any shape that broadcasts to the block (the gradient summed to it); fresh,
// gamma's shape (the block's without gamma). dbeta: given, likewise; fresh, the block's.
Arg param_grad(Args& args, py::handle obj, const char* name, const Arg& like, const LnInput& b, bool broadcast) {
  if (!broadcast) return args.output(obj, out(name).shape(b.block, b.block_what));
  if (!obj.is_none()) return args.output(obj, out(name));
  if (like.present()) return args.output(obj, out(name).shape(like.shape(), "the shape of gamma"));
  return args.output(obj, out(name).shape(b.block, b.block_what));
}

py::tuple layer_norm_backward(py::handle dy_, py::handle x_, py::handle save_mean_, py::handle save_rstd_,
                              const std::optional<std::vector<int64_t>>& normalized_shape,
                              const std::vector<int64_t>& axes, bool to_end, bool broadcast, py::handle gamma_,
                              py::handle dx_, py::handle dgamma_, py::handle dbeta_, py::handle workspace_,
                              bool param_grads) {
  Args args;
  const LnInput b = ln_input(args, x_, normalized_shape, axes, to_end);
  const Arg dy = args.array(dy_, in("dy").shape(b.x.shape(), "the shape of x"));
  const Arg mean = args.array(save_mean_, in("save_mean").shape(b.lead, b.lead_what));
  const Arg rstd = args.array(save_rstd_, in("save_rstd").shape(b.lead, b.lead_what));
  const Arg gamma = args.array(gamma_, param_spec(in("gamma").optional(), b, broadcast));
  const std::vector<int64_t> gmap = param_map(gamma, b, "gamma");
  const Arg dx = args.output(dx_, out("out[0]").shape(b.x.shape(), "the shape of x"));
  Arg dgamma, dbeta, ws;
  std::vector<int64_t> dgmap, dbmap;
  if (param_grads) {
    dgamma = param_grad(args, dgamma_, "out[1]", gamma, b, broadcast);
    dbeta = param_grad(args, dbeta_, "out[2]", Arg(), b, broadcast);
    dgmap = param_map(dgamma, b, "out[1]");
    dbmap = param_map(dbeta, b, "out[2]");
    ws = args.workspace(workspace_, norm::ln_workspace_doubles(b.plan));
  }
  args.check_overlap();
  with_dtype(args.dtype(), [&](auto tag) {
    using T = decltype(tag);
    py::gil_scoped_release nogil;
    norm::layer_norm_backward<T>(dx.as<T>(), dgamma.as<T>(), dgmap, dgamma.present() ? dgamma.size() : 0, dbeta.as<T>(),
                                 dbmap, dbeta.present() ? dbeta.size() : 0, dy.as<T>(), b.x.as<T>(), mean.as<T>(),
                                 rstd.as<T>(), gamma.as<T>(), gmap, ws.as<double>(), b.plan);
  });
  return py::make_tuple(dx.array(), param_grads ? py::object(dgamma.array()) : py::none(),
                        param_grads ? py::object(dbeta.array()) : py::none());
}

int64_t layer_norm_workspace_size(const std::vector<int64_t>& shape, int64_t first, int64_t last) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (first < 0 || last < first || last >= nd)
    throw py::value_error("normalised axes " + std::to_string(first) + ".." + std::to_string(last) +
                          " do not fit shape " + shape_str(shape));
  checked_numel(shape, "shape");
  int64_t outer = 1, d = 1, inner = 1;
  for (int64_t k = 0; k < nd; ++k) (k < first ? outer : k <= last ? d : inner) *= shape[k];
  const int64_t doubles = norm::ln_workspace_doubles(norm::ln_plan_strided(outer, d, inner));
  if (doubles < 0) throw py::value_error("shape " + shape_str(shape) + " needs a workspace larger than fits in int64");
  return doubles;
}

}  // namespace

void register_layer_norm(py::module_& m) {
  m.def("layer_norm_forward", &layer_norm_forward, py::arg("x"), py::arg("normalized_shape"), py::arg("axes"),
        py::arg("to_end"), py::arg("broadcast"), py::arg("gamma"), py::arg("beta"), py::arg("out"),
        py::arg("save_mean"), py::arg("save_rstd"), py::arg("eps"),
        "Layer-norm forward into out, save_mean, save_rstd (None: fresh); returns them "
        "(see nndl_fast.norm.layer_norm_forward).");
  m.def("layer_norm_backward", &layer_norm_backward, py::arg("dy"), py::arg("x"), py::arg("save_mean"),
        py::arg("save_rstd"), py::arg("normalized_shape"), py::arg("axes"), py::arg("to_end"), py::arg("broadcast"),
        py::arg("gamma"), py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"), py::arg("workspace"),
        py::arg("param_grads"),
        "Layer-norm backward into dx and (param_grads) dgamma, dbeta (None: fresh); returns them "
        "(see nndl_fast.norm.layer_norm_backward).");
  m.def("layer_norm_workspace_size", &layer_norm_workspace_size, py::arg("shape"), py::arg("first"), py::arg("last"),
        "float64 elements of the layer-norm backward's workspace for an x of this shape normalised over axes "
        "first..last.");
}

}  // namespace nndl::bind
