// Batch normalisation (1.43–1.48), fused kernels. Formulas and argument names:
// python/nndl_fast/norm/batch_norm.py. x is seen as (outer, C, inner), see norm/norm_plan.hpp.
//
// Training forward = bn_stats (one pass over x: per-task mean and M2 from shifted sums,
//                    blocks merged by Chan; see norm/moments.hpp)
//                  + bn_stats_finalize (merge partials in task order; running statistics)
//                  + bn_apply (one pass: y = (x − μ)·a + β, a = γ·invstd).
// Training backward = bn_backward_reduce (one pass over x and dy: Σdy, Σdy·(x − μ))
//                   + bn_backward_finalize (dγ, dβ, dx coefficients)
//                   + bn_backward_dx (one pass: dx = (x − μ)·B + dy·A + K).
// Inference backward = bn_backward_reduce with dx written in the same pass (dx = dy·A).
// Outputs of 16 MiB and more: y (both layouts) and dx (planes layout) are written with
// streaming stores, see norm/stream_store.hpp.
#pragma once

#include <cstdint>

#include "norm/norm_plan.hpp"
#include "simd/dispatch.hpp"

NNDL_DECLARE_KERNELS(
  // partial: [p.blocks][2][p.pstride] doubles (mean, M2 of each (partial block, channel)).
  template <class T>  // float, double
  void bn_stats(double* partial, const T* x, const norm::BnPlan& p);

  // Merges partial in block order. Writes save_mean, save_invstd (C) and the apply
  // coefficients coef[0][c] = μ, coef[1][c] = γ·invstd, coef[2][c] = β (rounded to T once,
  // so the element passes read them directly). When running_mean
  // is not null: running ← (1 − f)·running + f·batch, the variance unbiased (·n/(n−1)) or not.
  template <class T>
  void bn_stats_finalize(T* save_mean, T* save_invstd, T* coef, T* running_mean, T* running_var,
                         const double* partial, const T* gamma, const T* beta, double eps,
                         double factor, bool unbiased, const norm::BnPlan& p);

  // y[n, c, s] = (x − coef[0][c])·coef[1][c] + coef[2][c]   (x: (outer, C, inner))
  template <class T>
  void bn_apply(T* y, const T* x, const T* coef, const norm::BnPlan& p);

  // partial: [p.blocks][2][p.pstride] = (Σdy, Σdy·(x − mean)). If dx is not null, also writes
  // dx = dy·scale[c] in the same pass (inference: no gradient through the statistics).
  template <class T>
  void bn_backward_reduce(double* partial, T* dx, const T* dy, const T* x, const T* mean,
                          const T* scale, const norm::BnPlan& p);

  // dβ = Σdy, dγ = Σdy·(x − μ)·invstd (either may be null). With coef not null (training),
  // the dx coefficients, packed by blocks of 16 channels from slot `phase` (batch_norm.cpp,
  // kPack; coef 64-byte aligned, phase = line_phase of the dx rows):
  //   A = γ·invstd,  B = −γ·invstd³·Σdy(x − μ)/m,  K = −A·Σdy/m,  μ = mean[c],  m = outer·inner.
  template <class T>
  void bn_backward_finalize(T* dgamma, T* dbeta, T* coef, const double* partial, const T* gamma,
                            const T* mean, const T* invstd, const norm::BnPlan& p, int64_t phase);

  // dx = (x − μ[c])·B[c] + dy·A[c] + K[c], coefficients as bn_backward_finalize packs them.
  template <class T>
  void bn_backward_dx(T* dx, const T* dy, const T* x, const T* coef, const norm::BnPlan& p, int64_t phase);
)
