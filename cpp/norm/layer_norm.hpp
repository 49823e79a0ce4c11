// Layer normalisation (1.49–1.52; the same kernel per time step of an RNN, 1.53–1.54).
// Formulas and argument names: python/nndl_fast/norm/layer_norm.py. x is seen as (rows, D),
// statistics per row over the D trailing elements; see norm/norm_plan.hpp for the tasks.
// Outputs (y, dx) are written with streaming stores when a pass's footprint (inputs and
// output) exceeds the last-level cache (norm/stream_store.hpp). The drivers at the end
// (layer_norm_driver.cpp, compiled once) place γ, β and call the kernels.
#pragma once

#include <cstdint>
#include <vector>

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

// Where each of the D elements of the normalised block reads a parameter of shape `param`
// that broadcasts to `block` (NumPy's rule, right-aligned: γ of shape (1,) or (C, 1, 1) for
// a block (C, H, W)): index map[j] into the parameter; empty when param == block (identity).
std::vector<int64_t> ln_param_map(const std::vector<int64_t>& block, const std::vector<int64_t>& param);

// y, save_mean, save_rstd (the shape of x without the block) from x (p: ln_plan_strided of
// x's (outer, D, inner)); gamma, beta may be null; gamma_map / beta_map (ln_param_map, may
// be empty) when they broadcast to the block.
template <class T>  // float, double
void layer_norm_forward(T* y, T* save_mean, T* save_rstd, const T* x, const T* gamma,
                        const std::vector<int64_t>& gamma_map, const T* beta, const std::vector<int64_t>& beta_map,
                        double eps, const LnPlan& p);

// dx, and (workspace not null: ln_workspace_doubles(p) doubles) dgamma, dbeta, either of
// which may be null, each summed to its own shape through dgamma_map / dbeta_map (empty:
// the block's shape; dgamma_n, dbeta_n: their element counts); gamma may be null (γ = 1).
template <class T>
void layer_norm_backward(T* dx, T* dgamma, const std::vector<int64_t>& dgamma_map, int64_t dgamma_n, T* dbeta,
                         const std::vector<int64_t>& dbeta_map, int64_t dbeta_n, const T* dy, const T* x,
                         const T* save_mean, const T* save_rstd, const T* gamma, const std::vector<int64_t>& gamma_map,
                         double* workspace, const LnPlan& p);

}  // namespace nndl::norm
