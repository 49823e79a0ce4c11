// nndl_fast._core optimizer steps: one call updates a whole list of tensors in place.
//
// Every step takes the lists (params, grads, the rule's state lists) and two named structs:
// `terms` (GradTerms: the gradient terms shared by every rule) and `coeffs` (the rule's
// per-call coefficients, e.g. AdamCoeffs). The coefficients are computed once per call, in
// double, by the rule's module in python/nndl_fast/optim/ (which carries the formula); the
// header beside each kernel (cpp/optim/<rule>.hpp) says how the kernel uses each field.
// A step returns True, or False when skip_nonfinite found NaN/Inf and changed nothing.
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

// The keyword-only tail every step shares: terms, coeffs, skip_nonfinite.
#define NNDL_STEP_KWARGS py::kw_only(), py::arg("terms"), py::arg("coeffs"), py::arg("skip_nonfinite") = false

void bind_coefficient_structs(py::module_& m) {
  py::class_<optim::GradTerms>(m, "GradTerms",
                               "g' = scale*g + l2*theta + l1*theta/sqrt(theta^2 + l1_eps); theta <- decay*theta "
                               "(see nndl_fast.optim).")
      .def(py::init([](double scale, double l2, double l1, double l1_eps, double decay) {
             return optim::GradTerms{scale, l2, l1, l1_eps, decay};
           }),
           py::kw_only(), py::arg("scale") = 1.0, py::arg("l2") = 0.0, py::arg("l1") = 0.0,
           py::arg("l1_eps") = 1e-8, py::arg("decay") = 1.0)
      .def_readonly("scale", &optim::GradTerms::scale)
      .def_readonly("l2", &optim::GradTerms::l2)
      .def_readonly("l1", &optim::GradTerms::l1)
      .def_readonly("l1_eps", &optim::GradTerms::l1_eps)
      .def_readonly("decay", &optim::GradTerms::decay);

  // The presence flags (momentum, amsgrad, use_momentum, centered) are not fields: the step
  // sets them from the state lists it is given, so they cannot disagree.
  py::class_<optim::SgdCoeffs>(m, "SgdCoeffs", "u <- a*u + c*g'; theta <- decay*theta + s*u [+ n*g'] (optim/sgd.hpp).")
      .def(py::init([](double lr, double a, double c, double s, double n, bool nesterov) {
             return optim::SgdCoeffs{lr, false, a, c, s, n, nesterov};
           }),
           py::kw_only(), py::arg("lr"), py::arg("a") = 0.0, py::arg("c") = 0.0, py::arg("s") = 0.0,
           py::arg("n") = 0.0, py::arg("nesterov") = false)
      .def_readonly("lr", &optim::SgdCoeffs::lr)
      .def_readonly("a", &optim::SgdCoeffs::a)
      .def_readonly("c", &optim::SgdCoeffs::c)
      .def_readonly("s", &optim::SgdCoeffs::s)
      .def_readonly("n", &optim::SgdCoeffs::n)
      .def_readonly("nesterov", &optim::SgdCoeffs::nesterov);

  py::class_<optim::AdagradCoeffs>(m, "AdagradCoeffs", "theta <- decay*theta - lr*g'/(sqrt(G + eps_in) + eps_out).")
      .def(py::init([](double lr, double eps_in, double eps_out) { return optim::AdagradCoeffs{lr, eps_in, eps_out}; }),
           py::kw_only(), py::arg("lr"), py::arg("eps_in"), py::arg("eps_out"))
      .def_readonly("lr", &optim::AdagradCoeffs::lr)
      .def_readonly("eps_in", &optim::AdagradCoeffs::eps_in)
      .def_readonly("eps_out", &optim::AdagradCoeffs::eps_out);

  py::class_<optim::RmspropCoeffs>(m, "RmspropCoeffs", "See optim/rmsprop.hpp.")
      .def(py::init([](double lr, double beta, double eps_in, double eps_out, double momentum) {
             return optim::RmspropCoeffs{lr, beta, eps_in, eps_out, momentum, false, false};
           }),
           py::kw_only(), py::arg("lr"), py::arg("beta"), py::arg("eps_in"), py::arg("eps_out"),
           py::arg("momentum") = 0.0)
      .def_readonly("lr", &optim::RmspropCoeffs::lr)
      .def_readonly("beta", &optim::RmspropCoeffs::beta)
      .def_readonly("eps_in", &optim::RmspropCoeffs::eps_in)
      .def_readonly("eps_out", &optim::RmspropCoeffs::eps_out)
      .def_readonly("momentum", &optim::RmspropCoeffs::momentum);

  py::class_<optim::AdadeltaCoeffs>(m, "AdadeltaCoeffs", "See optim/adadelta.hpp.")
      .def(py::init([](double lr, double rho, double eps) { return optim::AdadeltaCoeffs{lr, rho, eps}; }),
           py::kw_only(), py::arg("lr"), py::arg("rho"), py::arg("eps"))
      .def_readonly("lr", &optim::AdadeltaCoeffs::lr)
      .def_readonly("rho", &optim::AdadeltaCoeffs::rho)
      .def_readonly("eps", &optim::AdadeltaCoeffs::eps);

  py::class_<optim::AdamCoeffs>(m, "AdamCoeffs",
                                "theta <- decay*theta - (c_m*m + c_g*g')/(sqrt(v*c2 + eps_in) + eps_out) "
                                "(optim/adam.hpp); c_g != 0 is Nadam's term.")
      .def(py::init([](double beta1, double beta2, double c_m, double c_g, double c2, double eps_in, double eps_out) {
             return optim::AdamCoeffs{beta1, beta2, c_m, c_g, c2, eps_in, eps_out, false, c_g != 0.0};
           }),
           py::kw_only(), py::arg("beta1"), py::arg("beta2"), py::arg("c_m"), py::arg("c_g") = 0.0, py::arg("c2"),
           py::arg("eps_in"), py::arg("eps_out"))
      .def_readonly("beta1", &optim::AdamCoeffs::beta1)
      .def_readonly("beta2", &optim::AdamCoeffs::beta2)
      .def_readonly("c_m", &optim::AdamCoeffs::c_m)
      .def_readonly("c_g", &optim::AdamCoeffs::c_g)
      .def_readonly("c2", &optim::AdamCoeffs::c2)
      .def_readonly("eps_in", &optim::AdamCoeffs::eps_in)
      .def_readonly("eps_out", &optim::AdamCoeffs::eps_out);
}

}  // namespace

void register_optim(py::module_& m) {
  bind_coefficient_structs(m);

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
            specs.push_back({names.back().c_str(), spec[1], spec[2].cast<bool>(), /*none_ok=*/true});
          }
          args.next_dtype();  // each group has its own dtype
          args.lists(specs);
        }
        args.check_overlap();  // across every group
      },
      py::arg("groups"),
      "Run the array checks of several steps at once, overlap included across them, updating nothing.\n"
      "groups: a list of lists of (name, list of arrays or None, written) tuples; each group's first\n"
      "list fixes its count, shapes and dtype.");
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
      [](py::handle params, py::handle grads, py::handle buf, const optim::GradTerms& terms,
         optim::SgdCoeffs co, bool skip_nonfinite) {
        co.momentum = !buf.is_none();
        return optim_step({{"params", params, true}, {"grads", grads, false},
                           {"momentum_buffer", buf, true, /*none_ok=*/true}},
                          skip_nonfinite, NNDL_LAUNCH(sgd_step, terms, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("momentum_buffer") = py::none(), NNDL_STEP_KWARGS,
      "SGD / momentum / Nesterov step (see nndl_fast.optim.SGD).");

  m.def(
      "adagrad_step",
      [](py::handle params, py::handle grads, py::handle G, const optim::GradTerms& terms,
         const optim::AdagradCoeffs& co, bool skip_nonfinite) {
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"sum", G, true}},
                          skip_nonfinite, NNDL_LAUNCH(adagrad_step, terms, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("sum"), NNDL_STEP_KWARGS,
      "AdaGrad step (see nndl_fast.optim.AdaGrad).");

  m.def(
      "rmsprop_step",
      [](py::handle params, py::handle grads, py::handle G, py::handle buf, py::handle gbar,
         const optim::GradTerms& terms, optim::RmspropCoeffs co, bool skip_nonfinite) {
        co.use_momentum = !buf.is_none();
        co.centered = !gbar.is_none();
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"square_avg", G, true},
                           {"momentum_buffer", buf, true, true}, {"grad_avg", gbar, true, true}},
                          skip_nonfinite, NNDL_LAUNCH(rmsprop_step, terms, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avg"), py::arg("momentum_buffer") = py::none(),
      py::arg("grad_avg") = py::none(), NNDL_STEP_KWARGS, "RMSprop step (see nndl_fast.optim.RMSprop).");

  m.def(
      "adadelta_step",
      [](py::handle params, py::handle grads, py::handle G, py::handle X, const optim::GradTerms& terms,
         const optim::AdadeltaCoeffs& co, bool skip_nonfinite) {
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"square_avg", G, true},
                           {"acc_delta", X, true}},
                          skip_nonfinite, NNDL_LAUNCH(adadelta_step, terms, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("square_avg"), py::arg("acc_delta"), NNDL_STEP_KWARGS,
      "AdaDelta step (see nndl_fast.optim.AdaDelta).");

  m.def(
      "adam_step",
      [](py::handle params, py::handle grads, py::handle m_, py::handle v, py::handle v_max,
         const optim::GradTerms& terms, optim::AdamCoeffs co, bool skip_nonfinite) {
        co.amsgrad = !v_max.is_none();
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"exp_avg", m_, true},
                           {"exp_avg_sq", v, true}, {"max_exp_avg_sq", v_max, true, /*none_ok=*/true}},
                          skip_nonfinite, NNDL_LAUNCH(adam_step, terms, co));
      },
      py::arg("params"), py::arg("grads"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
      py::arg("max_exp_avg_sq") = py::none(), NNDL_STEP_KWARGS,
      "Adam / Nadam / AdamW step (see nndl_fast.optim.Adam).");
}

#undef NNDL_STEP_KWARGS
#undef NNDL_LAUNCH

}  // namespace nndl::bind
