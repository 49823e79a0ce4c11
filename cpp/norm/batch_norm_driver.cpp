// Batch-norm drivers (compiled once): choose the passes of batch_norm.cpp for the mode, fill
// the coefficients they read, and call the selected SIMD target's kernels. The workspace and
// coefficient layout is norm/batch_norm_layout.hpp.
#include <cmath>
#include <vector>

#include "norm/batch_norm.hpp"

namespace nndl::norm {
namespace {

int64_t numel(const BnPlan& p) { return p.outer * p.channels * p.inner; }

// The inference coefficients (μ, γ·rstd, β per kernel channel, as bn_stats_finalize writes
// them in training) and save_mean, save_rstd, from the running statistics.
template <class T>
void inference_coefficients(T* coef, T* save_mean, T* save_rstd, const T* running_mean, const T* running_var,
                            const T* gamma, const T* beta, double eps, const BnPlan& p) {
  const int64_t W = p.channels, C = W / p.fold;  // the kernels' channels, the input's
  for (int64_t c = 0; c < C; ++c) {
    const double rstd = 1.0 / std::sqrt(double(running_var[c]) + eps);
    save_mean[c] = running_mean[c];
    save_rstd[c] = T(rstd);
    for (int64_t w = c; w < W; w += C) {  // every kernel channel of input channel c
      coef[w] = running_mean[c];
      coef[W + w] = T((gamma ? double(gamma[c]) : 1.0) * rstd);
      coef[2 * W + w] = beta ? beta[c] : T(0);
    }
  }
}

}  // namespace

template <class T>
void batch_norm_forward(T* y, T* save_mean, T* save_rstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                        const T* beta, double* workspace, const BnForwardOptions& o, const BnPlan& p) {
  const int64_t C = p.channels / p.fold;
  const BnScratch scratch = bn_scratch(workspace, p);
  // μ, γ·rstd, β at the line phase of y's rows (see line_phase).
  T* coef = static_cast<T*>(scratch.coef) + line_phase(y, sizeof(T));
  if (!o.training) {
    inference_coefficients(coef, save_mean, save_rstd, running_mean, running_var, gamma, beta, o.eps, p);
  } else if (numel(p) == 0) {
    // An empty batch (as torch.nn.functional.batch_norm): running statistics untouched, no
    // statistics to save (zeros).
    for (int64_t c = 0; c < C; ++c) save_mean[c] = T(0), save_rstd[c] = T(0);
  } else {
    NNDL_DISPATCH(bn_stats<T>)(scratch.partial, x, p);
    NNDL_DISPATCH(bn_stats_finalize<T>)(save_mean, save_rstd, coef, running_mean, running_var, scratch.partial, gamma,
                                        beta, o.eps, o.factor, o.unbiased, p);
  }
  if (numel(p) > 0) NNDL_DISPATCH(bn_apply<T>)(y, x, coef, p);
}

template <class T>
void batch_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* save_mean, const T* save_rstd,
                         const T* gamma, double* workspace, bool training, const BnPlan& p) {
  const int64_t W = p.channels, C = W / p.fold;
  if (numel(p) == 0) {  // sums over no elements
    for (int64_t c = 0; c < C; ++c) {
      if (dgamma) dgamma[c] = T(0);
      if (dbeta) dbeta[c] = T(0);
    }
    return;
  }
  const BnScratch scratch = bn_scratch(workspace, p);
  T* coef = static_cast<T*>(scratch.coef);
  // The reduction pass reads μ per kernel channel: fold copies of it (see BnPlan::fold).
  std::vector<T> mean_w;
  for (int64_t w = 0; p.fold > 1 && w < W; ++w) mean_w.push_back(save_mean[w % C]);
  const T* mu = p.fold > 1 ? mean_w.data() : save_mean;
  if (training) {  // gradient through μ_B and σ²_B: reductions first, then dx
    const int64_t phase = line_phase(dx, sizeof(T));
    NNDL_DISPATCH(bn_backward_reduce<T>)(scratch.partial, nullptr, dy, x, mu, nullptr, p);
    NNDL_DISPATCH(bn_backward_finalize<T>)(dgamma, dbeta, coef, scratch.partial, gamma, save_mean, save_rstd, p, phase);
    NNDL_DISPATCH(bn_backward_dx<T>)(dx, dy, x, coef, p, phase);
  } else {  // fixed statistics: dx = dy·γ·rstd, written in the reduction pass
    for (int64_t w = 0; w < W; ++w) coef[w] = T((gamma ? double(gamma[w % C]) : 1.0) * double(save_rstd[w % C]));
    NNDL_DISPATCH(bn_backward_reduce<T>)(scratch.partial, dx, dy, x, mu, coef, p);
    NNDL_DISPATCH(bn_backward_finalize<T>)(dgamma, dbeta, nullptr, scratch.partial, gamma, save_mean, save_rstd, p, 0);
  }
}

#define NNDL_BN_DRIVERS(T)                                                                                             \
  template void batch_norm_forward(T*, T*, T*, T*, T*, const T*, const T*, const T*, double*, const BnForwardOptions&, \
                                   const BnPlan&);                                                                     \
  template void batch_norm_backward(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, double*, bool,       \
                                    const BnPlan&);
NNDL_BN_DRIVERS(float)
NNDL_BN_DRIVERS(double)
#undef NNDL_BN_DRIVERS

}  // namespace nndl::norm
