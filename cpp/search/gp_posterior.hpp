// The posterior of the GP sampler's Gaussian process at a few test points, with its gradient:
// the acquisition's maximiser evaluates it tens of times per suggestion on (4, n ≤ a few
// hundred) inputs, where NumPy's per-call cost is most of the time. Formulas and names:
// python/nndl_fast/search/gp.py (GaussianProcess.predict).
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

NNDL_DECLARE_KERNELS(

    // For each test point u_i (row i of u, m × d) against the n observations x (n × d), with
    // r_ij = ‖(u_i − x_j)/ℓ‖ (inv_ls = 1/ℓ) and s = √5 r:
    //   k_ij = σ_f² (1 + s + s²/3) e^{−s}            (Matérn 5/2)
    //   mean_i = Σ_j k_ij α_j                        var_i = max(σ_f² − ‖L⁻¹ k_i‖², 1e-18)
    // and, when dmean is not null, with g_ij = σ_f² (5/3)(1 + s) e^{−s} and w_i = L⁻ᵀ L⁻¹ k_i:
    //   dmean_i = −Σ_j g_ij α_j (u_i − x_j)/ℓ²       dvar_i = 2 Σ_j g_ij w_ij (u_i − x_j)/ℓ²
    // linv is L⁻¹ and linv_t its transpose (n × n each, read whole): both products are then row
    // updates that vectorize without reordering a sum. scratch holds 4n doubles. Serial: a call
    // is microseconds.
    void gp_posterior(double* mean, double* var, double* dmean, double* dvar, const double* u, int64_t m,
                      const double* x, int64_t n, int64_t d, const double* inv_ls, const double* alpha,
                      const double* linv, const double* linv_t, double signal_var, double* scratch);)
