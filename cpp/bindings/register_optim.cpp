// nndl_fast._core optimizer steps: one call updates a whole list of tensors in place.
// Hyper-parameters are range-checked in python/nndl_fast/optim.py; coefficients
// (bias corrections, schedules, conventions) arrive precomputed, in double.
// Every step returns True, or False when skip_nonfinite found NaN/Inf and changed nothing.
#include "bindings/optim_step.hpp"
#include "bindings/register.hpp"
#include "optim/adadelta.hpp"
#include "optim/adagrad.hpp"
#include "optim/adam.hpp"
#include "optim/rmsprop.hpp"
#include "optim/sgd.hpp"

namespace nndl::bind {

// NNDL_DISPATCH(kernel<T>) for the lists' dtype.
#define NNDL_LAUNCH(kernel, ...)                                  \
  [&](const auto& t) {                                            \
    using T = typename std::decay_t<decltype(t)>::value_type;     \
    NNDL_DISPATCH(kernel<T>)(t, __VA_ARGS__);                     \
  }

void register_optim(py::module_& m) {
  m.def(
      "check_step_lists",
      [](py::handle params, py::handle grads) {
        Args args;
        args.lists({{"params", params, true}, {"grads", grads, false}});
        args.check_overlap();
      },
      py::arg("params"), py::arg("grads"), "Run the argument checks of a step without updating anything.");
  m.def(
      "any_nonfinite",
      [](py::handle grads) {
        Args args;
        const Lists lists = args.lists({{"grads", grads, false}});
        args.check_overlap();
        const ChunkPlan plan(lists.numel.data(), static_cast<int64_t>(lists.numel.size()));
        return with_dtype(lists.dtype, [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          return NNDL_DISPATCH(any_nonfinite<T>)(reinterpret_cast<const T* const*>(lists.ptrs[0].data()),
                                                 plan.view());
        });
      },
      py::arg("grads"), "True when any element of the listed arrays is NaN or Inf.");

  m.def(
      "sgd_step",
      [](py::handle params, py::handle grads, py::handle buf, const py::tuple& terms, double lr,
         double a, double c, double s, double n, bool nesterov, bool skip_nonfinite) {
        const optim::SgdCoeffs co{lr, !buf.is_none(), a, c, s, n, nesterov};
        const optim::GradTerms gt = grad_terms(terms);
        return optim_step({{"params", params, true}, {"grads", grads, false},
                           {"momentum_buffer", buf, true, /*optional=*/true}},
                          skip_nonfinite, NNDL_LAUNCH(sgd_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("momentum_buffer"), py::arg("terms"), py::arg("lr"), py::arg("a"),
      py::arg("c"), py::arg("s"), py::arg("n"), py::arg("nesterov"), py::arg("skip_nonfinite"),
      "SGD / momentum / Nesterov step (see nndl_fast.optim.SGD).");

  m.def(
      "adagrad_step",
      [](py::handle params, py::handle grads, py::handle G, const py::tuple& terms, double lr,
         double eps_in, double eps_out, bool skip_nonfinite) {
        const optim::AdagradCoeffs co{lr, eps_in, eps_out};
        const optim::GradTerms gt = grad_terms(terms);
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"sum", G, true}},
                          skip_nonfinite, NNDL_LAUNCH(adagrad_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("sum"), py::arg("terms"), py::arg("lr"), py::arg("eps_in"),
      py::arg("eps_out"), py::arg("skip_nonfinite"), "AdaGrad step (see nndl_fast.optim.AdaGrad).");

  m.def(
      "rmsprop_step",
      [](py::handle params, py::handle grads, py::handle G, py::handle buf, py::handle gbar,
         const py::tuple& terms, double lr, double beta, double eps_in, double eps_out, double momentum,
         bool skip_nonfinite) {
        const optim::RmspropCoeffs co{lr, beta, eps_in, eps_out, momentum, !buf.is_none(), !gbar.is_none()};
        const optim::GradTerms gt = grad_terms(terms);
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"square_avg", G, true},
                           {"momentum_buffer", buf, true, true}, {"grad_avg", gbar, true, true}},
                          skip_nonfinite, NNDL_LAUNCH(rmsprop_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avg"), py::arg("momentum_buffer"), py::arg("grad_avg"),
      py::arg("terms"), py::arg("lr"), py::arg("beta"), py::arg("eps_in"), py::arg("eps_out"), py::arg("momentum"),
      py::arg("skip_nonfinite"), "RMSprop step (see nndl_fast.optim.RMSprop).");

  m.def(
      "adadelta_step",
      [](py::handle params, py::handle grads, py::handle G, py::handle X, const py::tuple& terms,
         double lr, double rho, double eps, bool skip_nonfinite) {
        const optim::AdadeltaCoeffs co{lr, rho, eps};
        const optim::GradTerms gt = grad_terms(terms);
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"square_avg", G, true},
                           {"acc_delta", X, true}},
                          skip_nonfinite, NNDL_LAUNCH(adadelta_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avg"), py::arg("acc_delta"), py::arg("terms"), py::arg("lr"),
      py::arg("rho"), py::arg("eps"), py::arg("skip_nonfinite"), "AdaDelta step (see nndl_fast.optim.AdaDelta).");

  m.def(
      "adam_step",
      [](py::handle params, py::handle grads, py::handle m_, py::handle v, py::handle v_max,
         const py::tuple& terms, double beta1, double beta2, double c_m, double c_g, double c2,
         double eps_in, double eps_out, bool skip_nonfinite) {
        const optim::AdamCoeffs co{beta1, beta2, c_m, c_g, c2, eps_in, eps_out, !v_max.is_none(), c_g != 0.0};
        const optim::GradTerms gt = grad_terms(terms);
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"exp_avg", m_, true},
                           {"exp_avg_sq", v, true}, {"max_exp_avg_sq", v_max, true, /*optional=*/true}},
                          skip_nonfinite, NNDL_LAUNCH(adam_step, gt, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
      py::arg("terms"), py::arg("beta1"), py::arg("beta2"), py::arg("c_m"), py::arg("c_g"), py::arg("c2"),
      py::arg("eps_in"), py::arg("eps_out"), py::arg("skip_nonfinite"), "Adam / Nadam / AdamW step (see nndl_fast.optim.Adam).");
}

#undef NNDL_LAUNCH

}  // namespace nndl::bind
