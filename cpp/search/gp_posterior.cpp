// The GP posterior and its gradient at test points (gp_posterior.hpp), one point at a time.
#include "search/gp_posterior.hpp"

#include <cmath>

namespace nndl::NNDL_TARGET {

void gp_posterior(double* mean, double* var, double* dmean, double* dvar, const double* u, int64_t m, const double* x,
                  int64_t n, int64_t d, const double* inv_ls, const double* alpha, const double* linv,
                  const double* linv_t, double signal_var, double* scratch) {
  const double sqrt5 = std::sqrt(5.0);
  double* k = scratch;  // k_i
  double* g = k + n;    // g_i
  double* v = g + n;    // L⁻¹ k_i
  double* w = v + n;    // L⁻ᵀ L⁻¹ k_i
  for (int64_t i = 0; i < m; ++i) {
    const double* ui = u + i * d;
    double mu = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double* xj = x + j * d;
      double r2 = 0.0;
      for (int64_t c = 0; c < d; ++c) {
        const double t = (ui[c] - xj[c]) * inv_ls[c];
        r2 += t * t;
      }
      const double s = sqrt5 * std::sqrt(r2);
      const double e = std::exp(-s);
      k[j] = signal_var * ((1.0 + s + s * s / 3.0) * e);
      g[j] = (signal_var * 5.0 / 3.0) * ((1.0 + s) * e);
      mu += k[j] * alpha[j];
    }
    for (int64_t a = 0; a < n; ++a) v[a] = 0.0;
    for (int64_t j = 0; j < n; ++j) {  // v = L⁻¹ k = Σ_j k_j (column j of L⁻¹ = row j of linv_t)
      const double* row = linv_t + j * n;
      const double kj = k[j];
#pragma omp simd
      for (int64_t a = 0; a < n; ++a) v[a] += row[a] * kj;
    }
    double q = 0.0;
    for (int64_t a = 0; a < n; ++a) q += v[a] * v[a];
    mean[i] = mu;
    const double vi = signal_var - q;
    var[i] = vi > 1e-18 ? vi : 1e-18;
    if (dmean == nullptr) continue;
    for (int64_t j = 0; j < n; ++j) w[j] = 0.0;
    for (int64_t a = 0; a < n; ++a) {  // w = (L⁻¹)ᵀ v = Σ_a v_a (row a of L⁻¹)
      const double* row = linv + a * n;
      const double va = v[a];
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) w[j] += row[j] * va;
    }
    double* dm = dmean + i * d;
    double* dv = dvar + i * d;
    for (int64_t c = 0; c < d; ++c) dm[c] = 0.0, dv[c] = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double* xj = x + j * d;
      const double ga = g[j] * alpha[j], gw = g[j] * w[j];
      for (int64_t c = 0; c < d; ++c) {
        const double diff = ui[c] - xj[c];
        dm[c] += ga * diff;
        dv[c] += gw * diff;
      }
    }
    for (int64_t c = 0; c < d; ++c) {
      const double il2 = inv_ls[c] * inv_ls[c];
      dm[c] = -dm[c] * il2;
      dv[c] = 2.0 * dv[c] * il2;
    }
  }
}

}  // namespace nndl::NNDL_TARGET
