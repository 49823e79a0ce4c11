// AdaGrad (1.8–1.9). Formulas: python/nndl_fast/optim/adagrad.py, class AdaGrad. State: state[0] = G.
#pragma once

#include "optim/tensor_lists.hpp"
#include "simd/dispatch.hpp"

namespace nndl::optim {

//   G ← G + g'²  ;  θ ← decay·θ − lr·g' / (sqrt(G + eps_in) + eps_out)
// lr already carries torch's lr_decay: lr / (1 + (t − 1)·lr_decay).
struct AdagradCoeffs {
  double lr, eps_in, eps_out;
};

}  // namespace nndl::optim

NNDL_DECLARE_KERNELS(template <class T>  // float, double
                     void adagrad_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms,
                                       const optim::AdagradCoeffs& c);)
