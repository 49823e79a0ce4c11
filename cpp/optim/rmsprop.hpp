// RMSprop (1.10–1.12), with torch's centered and momentum options.
// Formulas: python/nndl_fast/optim/rmsprop.py, class RMSprop.
// State: state[0] = G, state[1] = momentum buffer (momentum only), state[2] = mean g (centered only).
#pragma once

#include "optim/tensor_lists.hpp"
#include "simd/dispatch.hpp"

namespace nndl::optim {

//   G ← β·G + (1−β)·g'²                    [centered: ḡ ← β·ḡ + (1−β)·g' ; G̃ = G − ḡ²]
//   [bias_corrected (optax): G̃ = G·c2, centered G·c2 − (ḡ·c2)², c2 = 1/(1−βᵗ)]
//   d = sqrt(G̃ + eps_in) + eps_out
//   θ ← decay·θ − lr·g'/d                   [momentum: b ← μ·b + g'/d ; θ ← decay·θ − lr·b]
//                                           [nesterov (optax): θ ← decay·θ − lr·(g'/d + μ·b)]
struct RmspropCoeffs {
  double lr, beta, eps_in, eps_out, momentum;
  double c2;            // optional field: present only with bias correction
  bool bias_corrected;  // c2 was given
  bool nesterov;        // optional field
  bool use_momentum, centered;
};

}  // namespace nndl::optim

NNDL_DECLARE_KERNELS(template <class T>  // float, double
                     void rmsprop_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms,
                                       const optim::RmspropCoeffs& c);)
