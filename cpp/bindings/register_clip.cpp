// nndl_fast._core gradient clipping: global norm, clip by norm, clip by value, over a list
// of arrays in one call each. Ranges (max_norm >= 0, norm_type > 0, lo <= hi) are checked in
// python/nndl_fast/clip.py; arrays are checked here by Args (bindings/args.hpp).
#include <cmath>
#include <string>
#include <vector>

#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "clip/clip.hpp"

namespace nndl::bind {
namespace {

clip::NormKind norm_kind(double p) {
  if (std::isinf(p) && p > 0) return clip::NormKind::linf;
  if (p == 1.0) return clip::NormKind::l1;
  if (p == 2.0) return clip::NormKind::l2;
  if (!(p > 0.0) || !std::isfinite(p)) throw py::value_error("norm_type must be > 0 or inf");
  return clip::NormKind::lp;
}

clip::Convention convention_of(const std::string& convention) {
  if (convention == "chapter") return clip::Convention::chapter;
  if (convention == "torch") return clip::Convention::torch;
  throw py::value_error("convention must be 'chapter' or 'torch', got '" + convention + "'");
}

// The norm of every array of `lists` (list 0), with the GIL released. Partials: one per chunk.
template <class T>
double global_norm_of(const Lists& lists, const ChunkPlan& plan, clip::NormKind kind, double p) {
  const ChunkView view = plan.view();
  std::vector<double> partials(static_cast<size_t>(view.count));
  NNDL_DISPATCH(norm_partials<T>)(partials.data(), reinterpret_cast<const T* const*>(lists.ptrs[0].data()), view, kind,
                                  p);
  return clip::combine_partials(partials.data(), view.count, kind, p);
}

// Per-tensor clipping of an optimizer step (clip_per_tensor): for each item i of the lists
// of `groups` (each list one dtype, None items allowed), norms[i] = |grad_scale|·‖g_i‖ (NaN for
// None) and coefs[i] = the clip coefficient of that norm (1 for None); returns (norms, coefs,
// every norm finite).
py::tuple tensor_coefficients(const py::list& groups, double norm_type, double max_norm, const std::string& convention,
                              double grad_scale) {
  const clip::NormKind kind = norm_kind(norm_type);
  const clip::Convention conv = convention_of(convention);
  Args args;
  std::vector<Lists> lists;
  int64_t total = 0;
  for (py::handle g : groups) {
    args.next_dtype();  // each list has its own dtype
    lists.push_back(args.lists({{"grads", g, false, false, /*holes=*/true}}));
    total += static_cast<int64_t>(py::len(g));
  }
  args.check_overlap();
  py::array_t<double> norms(total), coefs(total);
  double* norm = norms.mutable_data();
  double* coef = coefs.mutable_data();
  bool finite = true;
  int64_t i = 0;
  for (size_t gi = 0; gi < lists.size(); ++gi) {
    const Lists& l = lists[gi];
    const auto n = static_cast<int64_t>(l.numel.size());
    const ChunkPlan plan(l.numel.data(), n);
    const ChunkView view = plan.view();
    std::vector<double> partials(static_cast<size_t>(view.count)), own(static_cast<size_t>(n));
    with_dtype(l.dtype, [&](auto tag) {
      using T = decltype(tag);
      int64_t elems = 0;
      for (int64_t e : l.numel) elems += e;
      GilRelease nogil(elems);
      NNDL_DISPATCH(norm_partials<T>)(partials.data(), reinterpret_cast<const T* const*>(l.ptrs[0].data()), view, kind,
                                      norm_type);
    });
    clip::tensor_norms(own.data(), n, partials.data(), view, kind, norm_type);
    int64_t j = 0;
    const py::object group = groups[gi];
    for (py::handle item : group) {
      if (item.is_none()) {
        norm[i] = NAN;
        coef[i] = 1.0;
      } else {
        norm[i] = own[static_cast<size_t>(j++)] * std::fabs(grad_scale);
        coef[i] = clip::clip_coefficient(norm[i], max_norm, conv);
        finite = finite && std::isfinite(norm[i]);
      }
      ++i;
    }
    if (j != n) throw py::value_error("grads changed while the norms were computed");
  }
  return py::make_tuple(norms, coefs, finite);
}

}  // namespace

void register_clip(py::module_& m) {
  m.def(
      "clip_global_norm",
      [](py::handle grads, double norm_type) {
        const clip::NormKind kind = norm_kind(norm_type);
        Args args;
        const Lists lists = args.lists({{"grads", grads, false}});
        args.check_overlap();
        const ChunkPlan plan(lists.numel.data(), static_cast<int64_t>(lists.numel.size()));
        return with_dtype(lists.dtype, [&](auto tag) {
          py::gil_scoped_release nogil;
          return global_norm_of<decltype(tag)>(lists, plan, kind, norm_type);
        });
      },
      py::arg("grads"), py::arg("norm_type"), "Global p-norm of a list of arrays (see nndl_fast.clip).");

  m.def(
      "clip_grad_norm",
      [](py::handle grads, double max_norm, double norm_type, const std::string& convention, bool error_if_nonfinite) {
        const clip::NormKind kind = norm_kind(norm_type);
        const clip::Convention conv = convention_of(convention);
        Args args;
        const Lists lists = args.lists({{"grads", grads, true}});
        args.check_overlap();
        const ChunkPlan plan(lists.numel.data(), static_cast<int64_t>(lists.numel.size()));
        double total = 0.0;
        bool applied = false;
        with_dtype(lists.dtype, [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          total = global_norm_of<T>(lists, plan, kind, norm_type);
          // Refused: nothing is written, the caller raises.
          if (error_if_nonfinite && !std::isfinite(total)) return;
          const double coef = clip::clip_coefficient(total, max_norm, conv);
          if (coef != 1.0)  // c = 1 changes no bit: skip the read-write pass
            NNDL_DISPATCH(scale_inplace<T>)(typed<T>(lists.ptrs[0]), plan.view(), coef);
          applied = true;
        });
        return py::make_tuple(total, applied);
      },
      py::arg("grads"), py::arg("max_norm"), py::arg("norm_type"), py::arg("convention"), py::arg("error_if_nonfinite"),
      "Clip a list of arrays by their global norm in place; returns (total_norm, applied).");

  m.def(
      "clip_grad_value",
      [](py::handle grads, double lo, double hi) {
        Args args;
        const Lists lists = args.lists({{"grads", grads, true}});
        args.check_overlap();
        const ChunkPlan plan(lists.numel.data(), static_cast<int64_t>(lists.numel.size()));
        with_dtype(lists.dtype, [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(clip_value_inplace<T>)(typed<T>(lists.ptrs[0]), plan.view(), lo, hi);
        });
      },
      py::arg("grads"), py::arg("lo"), py::arg("hi"), "Clip every element into [lo, hi] in place (1.24).");

  m.def("clip_tensor_coefficients", &tensor_coefficients, py::arg("groups"), py::arg("norm_type"), py::arg("max_norm"),
        py::arg("convention"), py::arg("grad_scale"),
        "Per-tensor clip by norm of an optimizer step: (norms, coefficients, all finite) for every item\n"
        "of a list of lists of arrays (None items: norm NaN, coefficient 1). See nndl_fast.optim.Optimizer.step.");

  m.def(
      "clip_coefficient",
      [](double total_norm, double max_norm, const std::string& convention) {
        return clip::clip_coefficient(total_norm, max_norm, convention_of(convention));
      },
      py::arg("total_norm"), py::arg("max_norm"), py::arg("convention"),
      "The factor clip by norm multiplies the gradients with (1.25, or torch's convention).");
}

}  // namespace nndl::bind
