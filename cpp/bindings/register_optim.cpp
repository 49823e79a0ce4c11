// nndl_fast._core optimizer steps: one call updates a whole list of tensors in place.
//
// Every step takes the lists (params, grads, the rule's state lists, None for an absent
// optional one) and two records of named numbers: `terms` (GradTerms: the gradient terms
// shared by every rule; with clip_per_tensor also `tensor_scale`, one float64 factor of its
// scale per item of grads) and `coeffs` (the rule's per-call coefficients, e.g. AdamCoeffs), as
// dicts read field by field by name (read_fields, bindings/optim_step.hpp). The coefficients
// are computed once per call, in double, by the rule's module in python/nndl_fast/optim/
// (which carries the formula); the header beside each kernel (cpp/optim/<rule>.hpp) says how
// the kernel uses each field.
// A step returns True, or False when skip_nonfinite found NaN/Inf and changed nothing.
// A grad of None leaves its tensor out of the step: its parameter and state are not touched
// (never zero-filled: a zero gradient would still move Adam's or momentum's parameter).
#include <deque>
#include <string>

#include "bindings/optim_step.hpp"
#include "bindings/register.hpp"
#include "optim/adadelta.hpp"
#include "optim/adagrad.hpp"
#include "optim/adam.hpp"
#include "optim/rmsprop.hpp"
#include "optim/sgd.hpp"

namespace nndl::bind {

// NNDL_DISPATCH(kernel<T>) for the lists' dtype.
#define NNDL_LAUNCH(kernel, ...)                              \
  [&](const auto& t) {                                        \
    using T = typename std::decay_t<decltype(t)>::value_type; \
    NNDL_DISPATCH(kernel<T>)(t, __VA_ARGS__);                 \
  }

namespace {

// The positional tail every step shares: terms, coeffs, skip_nonfinite (also accepted by name).
#define NNDL_STEP_TAIL py::arg("terms"), py::arg("coeffs"), py::arg("skip_nonfinite") = false

// Each rule's coefficient fields, by name (optim/<rule>.hpp says what each one does). The
// presence flags (momentum, amsgrad, use_momentum, centered) are not fields: the step sets
// them from the state lists it is given, so they cannot disagree. A peer's formula variant is
// an optional field, absent from the default record (amsgrad_v_hat; RMSprop's c2, nesterov).
template <class S, size_t N>
S coeffs_of(py::handle obj, const std::array<Field<S>, N>& fields) {
  return read_fields(obj, "coeffs", fields);
}

optim::SgdCoeffs sgd_coeffs(py::handle obj) {
  using S = optim::SgdCoeffs;
  static const std::array<Field<S>, 6> f{
      {{"lr", &S::lr}, {"a", &S::a}, {"c", &S::c}, {"s", &S::s}, {"n", &S::n}, {"nesterov", nullptr, &S::nesterov}}};
  return coeffs_of(obj, f);
}

optim::AdagradCoeffs adagrad_coeffs(py::handle obj) {
  using S = optim::AdagradCoeffs;
  static const std::array<Field<S>, 3> f{{{"lr", &S::lr}, {"eps_in", &S::eps_in}, {"eps_out", &S::eps_out}}};
  return coeffs_of(obj, f);
}

optim::RmspropCoeffs rmsprop_coeffs(py::handle obj) {
  using S = optim::RmspropCoeffs;
  static const std::array<Field<S>, 7> f{{{"lr", &S::lr},
                                          {"beta", &S::beta},
                                          {"eps_in", &S::eps_in},
                                          {"eps_out", &S::eps_out},
                                          {"momentum", &S::momentum},
                                          {"c2", &S::c2, nullptr, true, &S::bias_corrected},
                                          {"nesterov", nullptr, &S::nesterov, true}}};
  return coeffs_of(obj, f);
}

optim::AdadeltaCoeffs adadelta_coeffs(py::handle obj) {
  using S = optim::AdadeltaCoeffs;
  static const std::array<Field<S>, 3> f{{{"lr", &S::lr}, {"rho", &S::rho}, {"eps", &S::eps}}};
  return coeffs_of(obj, f);
}

optim::AdamCoeffs adam_coeffs(py::handle obj) {
  using S = optim::AdamCoeffs;
  static const std::array<Field<S>, 8> f{{{"beta1", &S::beta1},
                                          {"beta2", &S::beta2},
                                          {"c_m", &S::c_m},
                                          {"c_g", &S::c_g},
                                          {"c2", &S::c2},
                                          {"eps_in", &S::eps_in},
                                          {"eps_out", &S::eps_out},
                                          {"amsgrad_v_hat", nullptr, &S::amsgrad_v_hat, true}}};
  return coeffs_of(obj, f);
}

}  // namespace

void register_optim(py::module_& m) {
  m.def(
      "check_step_groups",
      [](const py::list& groups) {
        // names outlive the ListSpecs that point into them (a deque never moves its strings)
        std::deque<std::string> names;
        std::vector<ListSpec> specs;
        Args args;
        for (py::handle group : groups) {
          specs.clear();
          for (py::handle item : group) {
            const auto spec = item.cast<py::tuple>();
            names.push_back(spec[0].cast<std::string>());
            const bool holes = spec.size() > 3 && spec[3].cast<bool>();
            specs.push_back({names.back().c_str(), spec[1], spec[2].cast<bool>(), /*none_ok=*/true, holes});
          }
          args.next_dtype();  // each group has its own dtype
          args.lists(specs);
        }
        args.check_overlap();  // across every group
      },
      py::arg("groups"),
      "Run the array checks of several steps at once, overlap included across them, updating nothing.\n"
      "groups: a list of lists of (name, list of arrays or None, written[, holes]) tuples; each group's\n"
      "first list fixes its count, shapes and dtype; a None item of a `holes` list leaves that tensor out.");
  m.def(
      "same_items",
      [](py::handle d, py::handle items) -> bool {
        // Python's own loop over a dozen values costs more than the step's kernel on 1000 floats.
        if (!PyDict_CheckExact(d.ptr()) || !PyTuple_Check(items.ptr())) return false;
        const Py_ssize_t n = PyTuple_GET_SIZE(items.ptr());
        if (PyDict_GET_SIZE(d.ptr()) * 2 != n) return false;
        Py_ssize_t pos = 0, i = 0;
        PyObject *key, *value;
        while (PyDict_Next(d.ptr(), &pos, &key, &value)) {
          if (key != PyTuple_GET_ITEM(items.ptr(), i) || value != PyTuple_GET_ITEM(items.ptr(), i + 1)) return false;
          i += 2;
        }
        return true;
      },
      py::arg("d"), py::arg("items"),
      "True when dict d (exactly a dict) holds, in order, the keys and value objects (compared by\n"
      "identity) of items = (k0, v0, k1, v1, ...): an optimizer's 'nothing edited since the check'.");
  m.def(
      "torch_grads",
      [](py::handle params, py::handle ptrs, py::handle to_dlpack) -> py::object {
        // nndl_fast.torch's per-step loop: Python's own costs ~0.5 us per tensor, as much as a
        // 20 000-element tensor's update.
        PyObject* ps = params.ptr();
        if (!PyList_CheckExact(ps) || !py::isinstance<py::array_t<int64_t, 0>>(ptrs)) return py::none();
        const auto want = py::reinterpret_borrow<py::array_t<int64_t, 0>>(ptrs);
        const Py_ssize_t n = PyList_GET_SIZE(ps);
        if (want.ndim() != 1 || want.shape(0) != n || !(want.flags() & py::array::c_style)) return py::none();
        static PyObject* const grad_name = PyUnicode_InternFromString("grad");
        static PyObject* const ptr_name = PyUnicode_InternFromString("data_ptr");
        const int64_t* ptr = want.data();
        py::list out(static_cast<size_t>(n));  // NULL items until set: freed as such on any exit
        Py_ssize_t present = 0;
        for (Py_ssize_t k = 0; k < n; ++k) {
          PyObject* p = PyList_GET_ITEM(ps, k);
          py::object g = py::reinterpret_steal<py::object>(PyObject_GetAttr(p, grad_name));
          PyObject* item = nullptr;
          if (g && g.is_none()) {
            item = g.release().ptr();
          } else if (g) {
            const auto at = py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(p, ptr_name));
            if (at && static_cast<int64_t>(PyLong_AsUnsignedLongLong(at.ptr())) == ptr[k]) {
              item = PyObject_CallOneArg(to_dlpack.ptr(), g.ptr());
              present += item != nullptr;
            }
          }
          if (!item) {
            PyErr_Clear();  // the caller's general loop meets the same case and names it
            return py::none();
          }
          PyList_SET_ITEM(out.ptr(), k, item);
        }
        return py::make_tuple(out, present);
      },
      py::arg("params"), py::arg("ptrs"), py::arg("to_dlpack"),
      "(grads, present) for a list of torch parameters: grads[k] = to_dlpack(params[k].grad), or None\n"
      "where the grad is None; present counts the others. None, for the caller's general loop, when a\n"
      "parameter's data_ptr() is not ptrs[k] (int64; 0 where no views are cached) or anything fails.");
  m.def(
      "any_nonfinite",
      [](py::handle grads) {
        Args args;
        const Lists lists = args.lists({{"grads", grads, false, false, /*holes=*/true}});
        args.check_overlap();
        const ChunkPlan plan(lists.numel.data(), static_cast<int64_t>(lists.numel.size()));
        return with_dtype(lists.dtype, [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          return NNDL_DISPATCH(any_nonfinite<T>)(reinterpret_cast<const T* const*>(lists.ptrs[0].data()), plan.view());
        });
      },
      py::arg("grads"), "True when any element of the listed arrays (None items skipped) is NaN or Inf.");

  m.def(
      "sgd_step",
      [](py::handle params, py::handle grads, py::handle buf, py::handle terms, py::handle coeffs,
         bool skip_nonfinite) {
        const optim::GradTerms gt = read_terms(terms);
        optim::SgdCoeffs co = sgd_coeffs(coeffs);
        co.momentum = !buf.is_none();
        return optim_step({{"params", params, true},
                           {"grads", grads, false, false, /*holes=*/true},
                           {"momentum_buffer", buf, true, /*none_ok=*/true}},
                          skip_nonfinite, terms, NNDL_LAUNCH(sgd_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("momentum_buffer"), NNDL_STEP_TAIL,
      "SGD / momentum / Nesterov step (see nndl_fast.optim.SGD).");

  m.def(
      "adagrad_step",
      [](py::handle params, py::handle grads, py::handle G, py::handle terms, py::handle coeffs, bool skip_nonfinite) {
        const optim::GradTerms gt = read_terms(terms);
        const optim::AdagradCoeffs co = adagrad_coeffs(coeffs);
        return optim_step({{"params", params, true}, {"grads", grads, false, false, /*holes=*/true}, {"sum", G, true}},
                          skip_nonfinite, terms, NNDL_LAUNCH(adagrad_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("sum"), NNDL_STEP_TAIL,
      "AdaGrad step (see nndl_fast.optim.AdaGrad).");

  m.def(
      "rmsprop_step",
      [](py::handle params, py::handle grads, py::handle G, py::handle buf, py::handle gbar, py::handle terms,
         py::handle coeffs, bool skip_nonfinite) {
        const optim::GradTerms gt = read_terms(terms);
        optim::RmspropCoeffs co = rmsprop_coeffs(coeffs);
        co.use_momentum = !buf.is_none();
        co.centered = !gbar.is_none();
        co.nesterov = co.use_momentum && co.nesterov;
        return optim_step({{"params", params, true},
                           {"grads", grads, false, false, /*holes=*/true},
                           {"square_avg", G, true},
                           {"momentum_buffer", buf, true, true},
                           {"grad_avg", gbar, true, true}},
                          skip_nonfinite, terms, NNDL_LAUNCH(rmsprop_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avg"), py::arg("momentum_buffer"), py::arg("grad_avg"),
      NNDL_STEP_TAIL, "RMSprop step (see nndl_fast.optim.RMSprop).");

  m.def(
      "adadelta_step",
      [](py::handle params, py::handle grads, py::handle G, py::handle X, py::handle terms, py::handle coeffs,
         bool skip_nonfinite) {
        const optim::GradTerms gt = read_terms(terms);
        const optim::AdadeltaCoeffs co = adadelta_coeffs(coeffs);
        return optim_step({{"params", params, true},
                           {"grads", grads, false, false, /*holes=*/true},
                           {"square_avg", G, true},
                           {"acc_delta", X, true}},
                          skip_nonfinite, terms, NNDL_LAUNCH(adadelta_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avg"), py::arg("acc_delta"), NNDL_STEP_TAIL,
      "AdaDelta step (see nndl_fast.optim.AdaDelta).");

  m.def(
      "adam_step",
      [](py::handle params, py::handle grads, py::handle m_, py::handle v, py::handle v_max, py::handle terms,
         py::handle coeffs, bool skip_nonfinite) {
        const optim::GradTerms gt = read_terms(terms);
        optim::AdamCoeffs co = adam_coeffs(coeffs);
        co.amsgrad = !v_max.is_none();
        co.amsgrad_v_hat = co.amsgrad && co.amsgrad_v_hat;
        co.nesterov = co.c_g != 0.0;  // Nadam's term present
        return optim_step({{"params", params, true},
                           {"grads", grads, false, false, /*holes=*/true},
                           {"exp_avg", m_, true},
                           {"exp_avg_sq", v, true},
                           {"max_exp_avg_sq", v_max, true, /*none_ok=*/true}},
                          skip_nonfinite, terms, NNDL_LAUNCH(adam_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
      NNDL_STEP_TAIL, "Adam / Nadam / AdamW step (see nndl_fast.optim.Adam).");
}

#undef NNDL_STEP_TAIL
#undef NNDL_LAUNCH

}  // namespace nndl::bind
