// nndl_fast._core optimizer steps: one call updates a whole list of tensors in place.
// Hyper-parameters are range-checked in python/nndl_fast/optim.py; coefficients
// (bias corrections, schedules) arrive precomputed, in double.
#include "bindings/optim_step.hpp"
#include "bindings/register.hpp"
#include "optim/adam.hpp"

namespace nndl::bind {

void register_optim(py::module_& m) {
  m.def(
      "adam_step",
      [](py::handle params, py::handle grads, py::handle m_, py::handle v, py::handle v_max,
         const py::tuple& terms, double beta1, double beta2, double c_m, double c_g, double c2,
         double eps_in, double eps_out, bool skip_nonfinite) {
        const optim::AdamCoeffs c{beta1, beta2, c_m, c_g, c2, eps_in, eps_out, !v_max.is_none(), c_g != 0.0};
        const optim::GradTerms gt = grad_terms(terms);
        return optim_step({{"params", params, true}, {"grads", grads, false}, {"m", m_, true},
                           {"v", v, true}, {"v_max", v_max, true, /*optional=*/true}},
                          skip_nonfinite, [&](const auto& t) {
                            using T = typename std::decay_t<decltype(t)>::value_type;
                            NNDL_DISPATCH(adam_step<T>)(t, gt, c);
                          });
      },
      "Adam / Nadam / AdamW step over lists of arrays (see nndl_fast.optim.Adam).");
}

}  // namespace nndl::bind
