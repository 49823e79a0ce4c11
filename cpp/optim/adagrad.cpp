// AdaGrad, one pass: reads θ, g, G and writes θ, G (20 B per float32 element).
#include "optim/adagrad.hpp"

#include <cmath>

#include "optim/grad_terms.hpp"

namespace nndl::NNDL_TARGET {
namespace {

template <class T, bool kRegularized>
void adagrad_impl(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::AdagradCoeffs& c) {
  const GradCoeffs<T> gc(terms);
  const T lr = T(c.lr), eps_in = T(c.eps_in), eps_out = T(c.eps_out);
  for_each_chunk(t.plan, [&](int64_t k, int64_t begin, int64_t end) {
    const T gs = gc.scale_of(terms, t, k);  // this tensor's gradient scale
    T* NNDL_RESTRICT theta = t.param[k];
    const T* NNDL_RESTRICT grad = t.grad[k];
    T* NNDL_RESTRICT G = t.state[0][k];
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T g = gc.template grad<kRegularized>(gs, grad[i], theta[i]);
      const T Gi = G[i] + g * g;  // (1.8)
      G[i] = Gi;
      theta[i] = gc.decay * theta[i] - lr * g / (std::sqrt(Gi + eps_in) + eps_out);  // (1.9)
    }
  });
}

}  // namespace

template <class T>
void adagrad_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::AdagradCoeffs& c) {
  terms.regularized() ? adagrad_impl<T, true>(t, terms, c) : adagrad_impl<T, false>(t, terms, c);
}

template void adagrad_step(const optim::TensorLists<float>&, const optim::GradTerms&, const optim::AdagradCoeffs&);
template void adagrad_step(const optim::TensorLists<double>&, const optim::GradTerms&, const optim::AdagradCoeffs&);

}  // namespace nndl::NNDL_TARGET
