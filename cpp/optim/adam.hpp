// Adam (1.19–1.23), Nadam (Dozat 2016) and AdamW (1.64 / Loshchilov & Hutter): one kernel.
// Formulas: python/nndl_fast/optim/adam.py, class Adam. State: state[0] = M (m), state[1] = G (v),
// state[2] = max G (v_max, amsgrad only).
#pragma once

#include "optim/tensor_lists.hpp"
#include "simd/dispatch.hpp"

namespace nndl::optim {

// Per call, in double (the bias corrections folded in by AdamRule.coefficients, optim/adam.py):
//   m ← β1·m + (1−β1)·g'       v ← β2·v + (1−β2)·g'²      [amsgrad: v_max ← max(v_max, v)]
//   d = sqrt(v̂·c2 + eps_in) + eps_out                       (v̂ = v_max or v)
//   [amsgrad_v_hat (optax): v_max ← max(v_max, v·c2) ; d = sqrt(v_max + eps_in) + eps_out]
//   θ ← decay·θ − (c_m·m + c_g·g') / d
// Adam: c_m = α/(1−β1ᵗ), c_g = 0, c2 = 1/(1−β2ᵗ). Nadam: c_g ≠ 0 (the Nesterov term).
struct AdamCoeffs {
  double beta1, beta2;
  double c_m, c_g, c2;
  double eps_in, eps_out;
  bool amsgrad;
  bool amsgrad_v_hat;  // the max is over the bias-corrected v (an optional field: optax's variant)
  bool nesterov;       // c_g term present
};

}  // namespace nndl::optim

NNDL_DECLARE_KERNELS(template <class T>  // float, double
                     void adam_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms,
                                    const optim::AdamCoeffs& c);)
