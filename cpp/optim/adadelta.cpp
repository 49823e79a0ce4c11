// AdaDelta, one pass: reads θ, g, G, X and writes θ, G, X (28 B per float32 element).
#include "optim/adadelta.hpp"

#include <cmath>

#include "optim/grad_terms.hpp"

namespace nndl::NNDL_TARGET {
namespace {

template <class T, bool kRegularized>
void adadelta_impl(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::AdadeltaCoeffs& c) {
  const GradCoeffs<T> gc(terms);
  const T lr = T(c.lr), rho = T(c.rho), one_minus_rho = T(1.0 - c.rho), eps = T(c.eps);
  for_each_chunk(t.plan, [&](int64_t k, int64_t begin, int64_t end) {
    const T gs = gc.scale_of(terms, t, k);  // this tensor's gradient scale
    T* NNDL_RESTRICT theta = t.param[k];
    const T* NNDL_RESTRICT grad = t.grad[k];
    T* NNDL_RESTRICT G = t.state[0][k];
    T* NNDL_RESTRICT X = t.state[1][k];
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T g = gc.template grad<kRegularized>(gs, grad[i], theta[i]);
      const T Gi = rho * G[i] + one_minus_rho * g * g;                  // (1.10)
      const T delta = std::sqrt(X[i] + eps) / std::sqrt(Gi + eps) * g;  // −Δθ_t, (1.14)
      G[i] = Gi;
      X[i] = rho * X[i] + one_minus_rho * delta * delta;  // (1.13)
      theta[i] = gc.decay * theta[i] - lr * delta;
    }
  });
}

}  // namespace

template <class T>
void adadelta_step(const optim::TensorLists<T>& t, const optim::GradTerms& terms, const optim::AdadeltaCoeffs& c) {
  terms.regularized() ? adadelta_impl<T, true>(t, terms, c) : adadelta_impl<T, false>(t, terms, c);
}

template void adadelta_step(const optim::TensorLists<float>&, const optim::GradTerms&, const optim::AdadeltaCoeffs&);
template void adadelta_step(const optim::TensorLists<double>&, const optim::GradTerms&, const optim::AdadeltaCoeffs&);

}  // namespace nndl::NNDL_TARGET
