// RMSprop, one pass: reads θ, g, G and writes θ, G (20 B per float32 element; the
// momentum and centered buffers add 8 B each).
#include "optim/rmsprop.hpp"

#include <cmath>

#include "optim/grad_terms.hpp"

namespace nndl::NNDL_TARGET {
namespace {

template <class T, bool kRegularized, bool kMomentum, bool kCentered, bool kBiasCorrected, bool kNesterov>
void rmsprop_impl(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::RmspropCoeffs& c) {
  const GradCoeffs<T> gc(terms);
  const T lr = T(c.lr), beta = T(c.beta), one_minus_beta = T(1.0 - c.beta);
  const T eps_in = T(c.eps_in), eps_out = T(c.eps_out), mu = T(c.momentum), c2 = T(c.c2);
  for_each_chunk(t.plan, [&](int64_t k, int64_t begin, int64_t end) {
    const T gs = gc.scale_of(terms, t, k);  // this tensor's gradient scale
    T* NNDL_RESTRICT theta = t.param[k];
    const T* NNDL_RESTRICT grad = t.grad[k];
    T* NNDL_RESTRICT G = t.state[0][k];
    T* NNDL_RESTRICT buf = kMomentum ? t.state[1][k] : nullptr;
    T* NNDL_RESTRICT gbar = kCentered ? t.state[2][k] : nullptr;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T g = gc.template grad<kRegularized>(gs, grad[i], theta[i]);
      const T Gi = beta * G[i] + one_minus_beta * g * g;  // (1.10)
      G[i] = Gi;
      T Gc = Gi;
      if constexpr (kBiasCorrected) Gc = Gi * c2;
      if constexpr (kCentered) {
        const T gb = beta * gbar[i] + one_minus_beta * g;
        gbar[i] = gb;
        if constexpr (kBiasCorrected) {
          const T gb_hat = gb * c2;
          Gc = Gc - gb_hat * gb_hat;
        } else {
          Gc = Gi - gb * gb;
        }
      }
      const T scaled = g / (std::sqrt(Gc + eps_in) + eps_out);  // (1.12) without α
      if constexpr (kMomentum) {
        const T b = mu * buf[i] + scaled;
        buf[i] = b;
        if constexpr (kNesterov)
          theta[i] = gc.decay * theta[i] - lr * (scaled + mu * b);
        else
          theta[i] = gc.decay * theta[i] - lr * b;
      } else {
        theta[i] = gc.decay * theta[i] - lr * scaled;
      }
    }
  });
}

}  // namespace

template <class T>
void rmsprop_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::RmspropCoeffs& c) {
  // The variants (bias correction, Nesterov momentum) are instantiated only beside the
  // flags they need, so the default path's code is as before.
  auto run = [&](auto reg, auto mom, auto cen, auto bias, auto nest) {
    rmsprop_impl<T, decltype(reg)::value, decltype(mom)::value, decltype(cen)::value, decltype(bias)::value,
                 decltype(nest)::value>(t, terms, c);
  };
  auto with_nest = [&](auto reg, auto mom, auto cen, auto bias) {
    if constexpr (decltype(mom)::value) {
      c.nesterov ? run(reg, mom, cen, bias, std::true_type{}) : run(reg, mom, cen, bias, std::false_type{});
    } else {
      run(reg, mom, cen, bias, std::false_type{});
    }
  };
  auto with_cen = [&](auto reg, auto mom) {
    if (c.bias_corrected)
      c.centered ? with_nest(reg, mom, std::true_type{}, std::true_type{})
                 : with_nest(reg, mom, std::false_type{}, std::true_type{});
    else
      c.centered ? with_nest(reg, mom, std::true_type{}, std::false_type{})
                 : with_nest(reg, mom, std::false_type{}, std::false_type{});
  };
  auto with_mom = [&](auto reg) {
    c.use_momentum ? with_cen(reg, std::true_type{}) : with_cen(reg, std::false_type{});
  };
  terms.regularized() ? with_mom(std::true_type{}) : with_mom(std::false_type{});
}

template void rmsprop_step(const optim::TensorLists<float>&, const optim::GradTerms&, const optim::RmspropCoeffs&);
template void rmsprop_step(const optim::TensorLists<double>&, const optim::GradTerms&, const optim::RmspropCoeffs&);

}  // namespace nndl::NNDL_TARGET
