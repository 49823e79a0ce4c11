// SGD / momentum / Nesterov, one pass: plain SGD reads θ, g and writes θ (12 B per float32
// element); with momentum it also reads and writes the buffer (20 B).
#include "optim/sgd.hpp"

#include "optim/grad_terms.hpp"

namespace nndl::NNDL_TARGET {
namespace {

template <class T, bool kRegularized, bool kMomentum, bool kNesterov>
void sgd_impl(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::SgdCoeffs& c) {
  const GradCoeffs<T> gc(terms);
  const T lr = T(c.lr), a = T(c.a), cg = T(c.c), s = T(c.s), n = T(c.n);
  for_each_chunk(t.plan, [&](int64_t k, int64_t begin, int64_t end) {
    const T gs = gc.scale_of(terms, t, k);  // this tensor's gradient scale
    T* NNDL_RESTRICT theta = t.param[k];
    const T* NNDL_RESTRICT grad = t.grad[k];
    T* NNDL_RESTRICT u = kMomentum ? t.state[0][k] : nullptr;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T g = gc.template grad<kRegularized>(gs, grad[i], theta[i]);
      if constexpr (kMomentum) {
        const T ui = a * u[i] + cg * g;  // (1.15)
        u[i] = ui;
        T step = s * ui;
        if constexpr (kNesterov) step = step + n * g;  // (1.18) on look-ahead parameters
        theta[i] = gc.decay * theta[i] + step;
      } else {
        theta[i] = gc.decay * theta[i] - lr * g;  // (1.3)
      }
    }
  });
}

}  // namespace

template <class T>
void sgd_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::SgdCoeffs& c) {
  auto run = [&](auto reg, auto mom, auto nest) {
    sgd_impl<T, decltype(reg)::value, decltype(mom)::value, decltype(nest)::value>(t, terms, c);
  };
  auto with_kind = [&](auto reg) {
    if (!c.momentum)
      run(reg, std::false_type{}, std::false_type{});
    else if (c.nesterov)
      run(reg, std::true_type{}, std::true_type{});
    else
      run(reg, std::true_type{}, std::false_type{});
  };
  terms.regularized() ? with_kind(std::true_type{}) : with_kind(std::false_type{});
}

template void sgd_step(const optim::TensorLists<float>&, const optim::GradTerms&, const optim::SgdCoeffs&);
template void sgd_step(const optim::TensorLists<double>&, const optim::GradTerms&, const optim::SgdCoeffs&);

}  // namespace nndl::NNDL_TARGET
