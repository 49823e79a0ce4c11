// Kernel-side helpers shared by the update rules (kernel files only).
#pragma once

#include <cmath>
#include <cstdint>

#include "optim/tensor_lists.hpp"
#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {

// GradTerms rounded once to the kernel's type.
template <class T>
struct GradCoeffs {
  T scale, l2, l1, l1_eps, decay;
  explicit GradCoeffs(const optim::GradTerms& t)
      : scale(T(t.scale)), l2(T(t.l2)), l1(T(t.l1)), l1_eps(T(t.l1_eps)), decay(T(t.decay)) {}

  // The scale of tensor k (read once per chunk): terms.scale·tensor_scale[k] in double, rounded
  // once (as a global clip coefficient folded into the scale is), or the scale itself.
  inline T scale_of(const optim::GradTerms& terms, const optim::TensorLists<T>& t, int64_t k) const {
    return t.tensor_scale ? T(terms.scale * t.tensor_scale[k]) : scale;
  }

  // g' of tensor_lists.hpp with gs = scale_of(...); the L1/L2 terms only exist in the
  // kRegularized instantiation.
  template <bool kRegularized>
  inline T grad(T gs, T g, T theta) const {
    T gp = gs * g;
    if constexpr (kRegularized) gp = gp + l2 * theta + l1 * theta / std::sqrt(theta * theta + l1_eps);
    return gp;
  }
};

}  // namespace nndl::NNDL_TARGET
