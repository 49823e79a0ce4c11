// Layer normalisation (1.49–1.52; the same kernel per time step of an RNN, 1.53–1.54).
// Formulas and argument names: python/nndl_fast/norm/layer_norm.py. x is seen as (rows, D),
// statistics per row over the D trailing elements; see norm/norm_plan.hpp for the tasks.
// Outputs (y, dx) are written with streaming stores when a pass's footprint (inputs and
// output) exceeds the last-level cache (norm/stream_store.hpp). The drivers at the end
// (layer_norm_driver.cpp, compiled once) place γ, β and call the kernels.
#pragma once

#include <cstdint>

#include "norm/norm_plan.hpp"
#include "simd/dispatch.hpp"

NNDL_DECLARE_KERNELS(
    // y[r, j] = (x[r, j] − μ_r)·rstd_r·γ[j] + β[j]; mean, rstd: (rows,). gamma / beta may be null.
    // One pass over memory: each row's statistics are taken block by block in cache.
    template <class T>  // float, double
    void ln_forward(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, double eps,
                    const norm::LnPlan& p);

    // dx[r, j] = rstd_r·(g_j − mean_j(g) − x̂_j·mean_j(g·x̂)),  g = dy·γ,  x̂ = (x − μ_r)·rstd_r.
    // partial (null: no dγ, dβ wanted): [chunks][2][p.pstride] = (Σ_r dy·x̂, Σ_r dy) of each row
    // chunk, then scratch (norm::ln_workspace_doubles doubles in all).
    template <class T> void ln_backward(T* dx, double* partial, const T* dy, const T* x, const T* mean, const T* rstd,
                                        const T* gamma, const norm::LnPlan& p);

    // dγ = Σ partial[k][0], dβ = Σ partial[k][1], in chunk order (either may be null).
    template <class T> void ln_backward_finalize(T* dgamma, T* dbeta, const double* partial, const norm::LnPlan& p);)

namespace nndl::norm {

// y, save_mean, save_rstd (rows,) from x (p = ln_plan_of_shape(x's shape)); gamma, beta (D,)
// may be null.
template <class T>  // float, double
void layer_norm_forward(T* y, T* save_mean, T* save_rstd, const T* x, const T* gamma, const T* beta, double eps,
                        const LnPlan& p);

// dx, and (workspace not null: ln_workspace_doubles(p) doubles) dgamma, dbeta, either of
// which may be null; gamma may be null (γ = 1).
template <class T>
void layer_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* save_mean, const T* save_rstd,
                         const T* gamma, double* workspace, const LnPlan& p);

}  // namespace nndl::norm
