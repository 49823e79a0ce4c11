// Layer-norm drivers (compiled once): place γ and β at the rows' cache-line phase and call the
// selected SIMD target's kernels of layer_norm.cpp.
#include <algorithm>
#include <vector>

#include "norm/layer_norm.hpp"

namespace nndl::norm {
namespace {

// The n elements at p, starting `phase` elements past a cache-line boundary (line_phase): p
// itself when it already does (or is null), else a copy in `storage`. Row passes combine
// per-element parameters (γ, β) with every row; at the rows' phase a vector load of them
// splits across cache lines together with the row's, not on steps of its own.
template <class T>
const T* at_line_phase(const T* p, int64_t n, int64_t phase, std::vector<T>& storage) {
  if (p == nullptr || line_phase(p, sizeof(T)) == phase) return p;
  constexpr int64_t line_elems = kCacheLineBytes / int64_t(sizeof(T));
  storage.resize(static_cast<size_t>(n + 2 * line_elems));
  T* at = storage.data() + (line_elems - line_phase(storage.data(), sizeof(T))) % line_elems + phase;
  std::copy(p, p + n, at);
  return at;
}

// The n-element parameter p read through map (ln_param_map) as a block of map.size() values.
template <class T>
const T* expanded(const T* p, const std::vector<int64_t>& map, std::vector<T>& storage) {
  if (p == nullptr || map.empty()) return p;
  storage.resize(map.size());
  for (size_t j = 0; j < map.size(); ++j) storage[j] = p[map[j]];
  return storage.data();
}

}  // namespace

std::vector<int64_t> ln_param_map(const std::vector<int64_t>& block, const std::vector<int64_t>& param) {
  if (param == block) return {};
  int64_t d = 1;
  for (int64_t s : block) d *= s;
  std::vector<int64_t> map(static_cast<size_t>(d));
  const size_t nb = block.size(), np = param.size();
  for (int64_t j = 0; j < d; ++j) {
    int64_t rest = j, idx = 0, stride = 1;
    for (size_t k = nb; k-- > 0;) {  // the block's axes from the last, right-aligned with param's
      const int64_t at = rest % block[k];
      rest /= block[k];
      if (k + np >= nb) {
        const int64_t pd = param[k + np - nb];
        idx += (pd == 1 ? 0 : at) * stride;
        stride *= pd;
      }
    }
    map[static_cast<size_t>(j)] = idx;
  }
  return map;
}

template <class T>
void layer_norm_forward(T* y, T* save_mean, T* save_rstd, const T* x, const T* gamma,
                        const std::vector<int64_t>& gamma_map, const T* beta, const std::vector<int64_t>& beta_map,
                        double eps, const LnPlan& p) {
  const int64_t phase = line_phase(y, sizeof(T));
  std::vector<T> g_full, b_full, g_copy, b_copy;
  gamma = expanded(gamma, gamma_map, g_full);
  beta = expanded(beta, beta_map, b_full);
  NNDL_DISPATCH(ln_forward<T>)(y, save_mean, save_rstd, x, at_line_phase(gamma, p.d, phase, g_copy),
                               at_line_phase(beta, p.d, phase, b_copy), eps, p);
}

template <class T>
void layer_norm_backward(T* dx, T* dgamma, const std::vector<int64_t>& dgamma_map, int64_t dgamma_n, T* dbeta,
                         const std::vector<int64_t>& dbeta_map, int64_t dbeta_n, const T* dy, const T* x,
                         const T* save_mean, const T* save_rstd, const T* gamma, const std::vector<int64_t>& gamma_map,
                         double* workspace, const LnPlan& p) {
  std::vector<T> g_full, g_copy;
  gamma = expanded(gamma, gamma_map, g_full);
  const T* g = at_line_phase(gamma, p.d, line_phase(dx, sizeof(T)), g_copy);
  NNDL_DISPATCH(ln_backward<T>)(dx, workspace, dy, x, save_mean, save_rstd, g, p);
  if (!workspace) return;
  if (dgamma_map.empty() && dbeta_map.empty()) {
    NNDL_DISPATCH(ln_backward_finalize<T>)(dgamma, dbeta, workspace, p);
    return;
  }
  // A broadcast parameter's gradient: the block's sums in double, then summed over the
  // broadcast axes in block order.
  std::vector<double> full_g(static_cast<size_t>(p.d)), full_b(static_cast<size_t>(p.d));
  NNDL_DISPATCH(ln_backward_finalize<double>)(full_g.data(), full_b.data(), workspace, p);
  auto reduce = [&](T* out, const std::vector<int64_t>& map, int64_t n, const std::vector<double>& full) {
    if (!out) return;
    if (map.empty()) {
      for (int64_t j = 0; j < p.d; ++j) out[j] = T(full[static_cast<size_t>(j)]);
      return;
    }
    std::vector<double> acc(static_cast<size_t>(n), 0.0);
    for (int64_t j = 0; j < p.d; ++j)
      acc[static_cast<size_t>(map[static_cast<size_t>(j)])] += full[static_cast<size_t>(j)];
    for (int64_t k = 0; k < n; ++k) out[k] = T(acc[static_cast<size_t>(k)]);
  };
  reduce(dgamma, dgamma_map, dgamma_n, full_g);
  reduce(dbeta, dbeta_map, dbeta_n, full_b);
}

using Map = std::vector<int64_t>;
#define NNDL_LN_DRIVERS(T)                                                                                    \
  template void layer_norm_forward(T*, T*, T*, const T*, const T*, const Map&, const T*, const Map&, double,  \
                                   const LnPlan&);                                                            \
  template void layer_norm_backward(T*, T*, const Map&, int64_t, T*, const Map&, int64_t, const T*, const T*, \
                                    const T*, const T*, const T*, const Map&, double*, const LnPlan&);
NNDL_LN_DRIVERS(float)
NNDL_LN_DRIVERS(double)
#undef NNDL_LN_DRIVERS

}  // namespace nndl::norm
