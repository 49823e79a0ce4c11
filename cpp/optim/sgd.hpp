// SGD (1.3) with the momentum (1.15) and Nesterov (1.16–1.18) variants: one kernel.
// Formulas: python/nndl_fast/optim/sgd.py, classes SGD, Momentum, Nesterov.
// State: state[0] = the momentum buffer (Δθ in the chapter's form, b in torch's); unused
// without momentum.
#pragma once

#include "optim/tensor_lists.hpp"
#include "simd/dispatch.hpp"

namespace nndl::optim {

// Per call, in double:
//   plain:     θ ← decay·θ − lr·g'
//   momentum:  u ← a·u + c·g' ;  θ ← decay·θ + s·u [+ n·g' with nesterov]
// Chapter form:  a = ρ, c = −α, s = 1            (Δθ_t = ρΔθ_{t−1} − α g_t, (1.15))
//   Nesterov:    s = ρ, n = −α on the look-ahead parameters (see optim/sgd.py, Nesterov)
// Torch form:    a = μ, c = 1 − dampening, s = −α (first step: a = 0, c = 1);  nesterov: s = −αμ, n = −α
struct SgdCoeffs {
  double lr;
  bool momentum;
  double a, c, s, n;
  bool nesterov;
};

}  // namespace nndl::optim

NNDL_DECLARE_KERNELS(template <class T>  // float, double
                     void sgd_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms,
                                   const optim::SgdCoeffs& c);)
