// What every optimizer kernel receives: aligned lists of tensors, and the terms that
// turn the raw gradient g into the one the rule uses.
#pragma once

#include <cstdint>

#include "parallel.hpp"

namespace nndl::optim {

// Tensor k has numel[k] elements in param[k], grad[k] and each used state[j][k].
template <class T>
struct TensorLists {
  using value_type = T;
  T* const* param;
  const T* const* grad;
  T* const* state[3];  // rule-specific buffers, in the order its header lists them
  const int64_t* numel;
  int64_t count;
  ChunkView plan;
  // Per-tensor clipping (clip_per_tensor): tensor k's gradient scale is GradTerms::scale ·
  // tensor_scale[k]; null for one scale for every tensor.
  const double* tensor_scale = nullptr;
};

// The gradient the update rule sees, and the decoupled decay of θ (python/nndl_fast/optim/base.py
// documents each term with its equation):
//   g' = scale·g + l2·θ + l1·θ/sqrt(θ² + l1_eps)    (1.59, 1.62, 1.63; scale: loss scaling,
//                                                    clip coefficient, −1 for maximize)
//   θ  ← decay·θ before the rule's update            (1.64: decay = 1 − w, or 1 − α·λ)
// Coefficients arrive in double, computed once per call; kernels round them to T.
struct GradTerms {
  double scale = 1.0;
  double l2 = 0.0;
  double l1 = 0.0;
  double l1_eps = 1e-8;
  double decay = 1.0;
  bool regularized() const { return l2 != 0.0 || l1 != 0.0; }
};

}  // namespace nndl::optim
