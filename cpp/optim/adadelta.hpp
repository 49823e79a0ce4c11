// AdaDelta (1.13–1.14). Formulas: python/nndl_fast/optim/adadelta.py, class AdaDelta.
// State: state[0] = G (mean g²), state[1] = ΔX² (mean Δθ²).
#pragma once

#include "optim/tensor_lists.hpp"
#include "simd/dispatch.hpp"

namespace nndl::optim {

//   G ← ρ·G + (1−ρ)·g'² ;  Δ = sqrt(X + ε)/sqrt(G + ε)·g' ;  X ← ρ·X + (1−ρ)·Δ² ;  θ ← decay·θ − lr·Δ
struct AdadeltaCoeffs {
  double lr, rho, eps;
};

}  // namespace nndl::optim

NNDL_DECLARE_KERNELS(template <class T>  // float, double
                     void adadelta_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms,
                                        const optim::AdadeltaCoeffs& c);)
