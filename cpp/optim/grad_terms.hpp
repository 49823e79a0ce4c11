// Kernel-side helpers shared by the update rules (kernel files only).
#pragma once

#include <cmath>

#include "optim/tensor_lists.hpp"
#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {

// GradTerms rounded once to the kernel's type.
template <class T>
struct GradCoeffs {
  T scale, l2, l1, l1_eps, decay;
  explicit GradCoeffs(const optim::GradTerms& t)
      : scale(T(t.scale)), l2(T(t.l2)), l1(T(t.l1)), l1_eps(T(t.l1_eps)), decay(T(t.decay)) {}

  // g' of tensor_lists.hpp; the L1/L2 terms only exist in the kRegularized instantiation.
  template <bool kRegularized>
  inline T grad(T g, T theta) const {
    T gp = scale * g;
    if constexpr (kRegularized) gp = gp + l2 * theta + l1 * theta / std::sqrt(theta * theta + l1_eps);
    return gp;
  }
};

}  // namespace nndl::NNDL_TARGET
