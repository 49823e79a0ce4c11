// Batch normalisation (1.43–1.48). Formulas and argument names:
// python/nndl_fast/norm/batch_norm.py. x is seen as (outer, C, inner), see norm/norm_plan.hpp.
//
// The kernels (NNDL_DECLARE_KERNELS: one copy per SIMD target, batch_norm.cpp, whose header
// says which passes run and what bytes they move):
//   training forward   = bn_stats + bn_stats_finalize + bn_apply
//   training backward  = bn_backward_reduce + bn_backward_finalize + bn_backward_dx
//   inference forward  = bn_apply (coefficients from the running statistics)
//   inference backward = bn_backward_reduce writing dx in the same pass + bn_backward_finalize
// The drivers below (batch_norm_driver.cpp, compiled once) choose and chain them, and fill
// the workspace laid out in norm/batch_norm_layout.hpp.
#pragma once

#include <cstdint>

#include "norm/batch_norm_layout.hpp"
#include "norm/norm_plan.hpp"
#include "simd/dispatch.hpp"

NNDL_DECLARE_KERNELS(
    // partial: [p.blocks][2][p.pstride] doubles (mean, M2 of each (partial block, channel)).
    template <class T>  // float, double
    void bn_stats(double* partial, const T* x, const norm::BnPlan& p);

    // Merges partial in block order. Writes save_mean, save_rstd (C) and the apply
    // coefficients coef[0][c] = μ, coef[1][c] = γ·rstd, coef[2][c] = β (rounded to T once,
    // so the element passes read them directly). When running_mean
    // is not null: running ← (1 − f)·running + f·batch, the variance unbiased (·n/(n−1)) or not.
    template <class T> void bn_stats_finalize(T* save_mean, T* save_rstd, T* coef, T* running_mean, T* running_var,
                                              const double* partial, const T* gamma, const T* beta, double eps,
                                              double factor, bool unbiased, const norm::BnPlan& p);

    // y[n, c, s] = (x − coef[0][c])·coef[1][c] + coef[2][c]   (x: (outer, C, inner))
    template <class T> void bn_apply(T* y, const T* x, const T* coef, const norm::BnPlan& p);

    // partial: [p.blocks][2][p.pstride] = (Σdy, Σdy·(x − mean)). If dx is not null, also writes
    // dx = dy·scale[c] in the same pass (inference: no gradient through the statistics).
    template <class T> void bn_backward_reduce(double* partial, T* dx, const T* dy, const T* x, const T* mean,
                                               const T* scale, const norm::BnPlan& p);

    // dβ = Σdy, dγ = Σdy·(x − μ)·rstd (either may be null). With coef not null (training),
    // the dx coefficients, packed by blocks of kBnPack channels from slot `phase`
    // (norm/batch_norm_layout.hpp; coef line-aligned, phase = line_phase of the dx rows):
    //   A = γ·rstd,  B = −γ·rstd³·Σdy(x − μ)/m,  K = −A·Σdy/m,  μ = mean[c],  m = outer·inner.
    template <class T> void bn_backward_finalize(T* dgamma, T* dbeta, T* coef, const double* partial, const T* gamma,
                                                 const T* mean, const T* rstd, const norm::BnPlan& p, int64_t phase);

    // dx = (x − μ[c])·B[c] + dy·A[c] + K[c], coefficients as bn_backward_finalize packs them.
    template <class T>
    void bn_backward_dx(T* dx, const T* dy, const T* x, const T* coef, const norm::BnPlan& p, int64_t phase);)

namespace nndl::norm {

// The scalar settings of a forward.
struct BnForwardOptions {
  bool training;  // batch statistics (and running-statistics update); else the running ones
  double eps;
  double factor;  // running ← (1 − factor)·running + factor·batch
  bool unbiased;  // the running variance takes the batch variance ·m/(m − 1)
};

// y, save_mean, save_rstd from x (p = bn_plan_of_shape(x's shape)); gamma, beta may be null;
// running_mean / running_var: both or neither in training (updated in place), both in
// inference (read). workspace: bn_workspace_doubles(p) doubles. An empty x writes nothing
// but save_mean, save_rstd: zeros in training, the running statistics' in inference.
template <class T>  // float, double
void batch_norm_forward(T* y, T* save_mean, T* save_rstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                        const T* beta, double* workspace, const BnForwardOptions& o, const BnPlan& p);

// dx, dgamma, dbeta from dy and the forward's saved statistics; gamma may be null (γ = 1).
// training: the gradient flows through μ_B and σ²_B; else the statistics are constants.
// An empty x gives dγ = dβ = 0.
template <class T>
void batch_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* save_mean, const T* save_rstd,
                         const T* gamma, double* workspace, bool training, const BnPlan& p);

}  // namespace nndl::norm
