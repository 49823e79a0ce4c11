// Adam / Nadam / AdamW update, one pass: reads θ, g, m, v and writes θ, m, v
// (28 bytes per float32 element; amsgrad adds v_max).
#include "optim/adam.hpp"

#include <cmath>

#include "optim/grad_terms.hpp"

namespace nndl::NNDL_TARGET {
namespace {

// kAmsgrad: 0 none, 1 the max of v (torch, Keras), 2 the max of the bias-corrected v (optax).
template <class T, bool kRegularized, int kAmsgrad, bool kNesterov>
void adam_impl(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::AdamCoeffs& c) {
  const GradCoeffs<T> gc(terms);
  const T beta1 = T(c.beta1), one_minus_beta1 = T(1.0 - c.beta1);
  const T beta2 = T(c.beta2), one_minus_beta2 = T(1.0 - c.beta2);
  const T c_m = T(c.c_m), c_g = T(c.c_g), c2 = T(c.c2);
  const T eps_in = T(c.eps_in), eps_out = T(c.eps_out);
  for_each_chunk(t.plan, [&](int64_t k, int64_t begin, int64_t end) {
    const T gs = gc.scale_of(terms, t, k);  // this tensor's gradient scale
    T* NNDL_RESTRICT theta = t.param[k];
    const T* NNDL_RESTRICT grad = t.grad[k];
    T* NNDL_RESTRICT m = t.state[0][k];
    T* NNDL_RESTRICT v = t.state[1][k];
    T* NNDL_RESTRICT v_max = kAmsgrad ? t.state[2][k] : nullptr;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T g = gc.template grad<kRegularized>(gs, grad[i], theta[i]);
      const T mi = beta1 * m[i] + one_minus_beta1 * g;      // (1.19)
      const T vi = beta2 * v[i] + one_minus_beta2 * g * g;  // (1.20)
      m[i] = mi;
      v[i] = vi;
      T v_used = vi;
      if constexpr (kAmsgrad == 1) {
        v_used = v_max[i] > vi ? v_max[i] : vi;  // a NaN in v propagates, as torch.maximum
        v_max[i] = v_used;
      }
      T denom;
      if constexpr (kAmsgrad == 2) {
        const T v_hat = vi * c2;
        const T v_hat_max = v_max[i] > v_hat ? v_max[i] : v_hat;  // a NaN propagates, as jnp.maximum
        v_max[i] = v_hat_max;
        denom = std::sqrt(v_hat_max + eps_in) + eps_out;
      } else {
        denom = std::sqrt(v_used * c2 + eps_in) + eps_out;  // sqrt(Ĝ + ε), (1.22–1.23)
      }
      T step = c_m * mi;  // α·M̂, (1.21)
      if constexpr (kNesterov) step = step + c_g * g;
      theta[i] = gc.decay * theta[i] - step / denom;
    }
  });
}

}  // namespace

template <class T>
void adam_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::AdamCoeffs& c) {
  // Flags settled here, outside the hot loop: 2 x 3 x 2 instantiations.
  auto run = [&](auto reg, auto ams, auto nest) {
    adam_impl<T, decltype(reg)::value, decltype(ams)::value, decltype(nest)::value>(t, terms, c);
  };
  auto with_nest = [&](auto reg, auto ams) {
    c.nesterov ? run(reg, ams, std::true_type{}) : run(reg, ams, std::false_type{});
  };
  auto with_ams = [&](auto reg) {
    if (!c.amsgrad)
      with_nest(reg, std::integral_constant<int, 0>{});
    else if (c.amsgrad_v_hat)
      with_nest(reg, std::integral_constant<int, 2>{});
    else
      with_nest(reg, std::integral_constant<int, 1>{});
  };
  terms.regularized() ? with_ams(std::true_type{}) : with_ams(std::false_type{});
}

template void adam_step(const optim::TensorLists<float>&, const optim::GradTerms&, const optim::AdamCoeffs&);
template void adam_step(const optim::TensorLists<double>&, const optim::GradTerms&, const optim::AdamCoeffs&);

}  // namespace nndl::NNDL_TARGET
