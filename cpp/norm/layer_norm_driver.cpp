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

}  // namespace

template <class T>
void layer_norm_forward(T* y, T* save_mean, T* save_rstd, const T* x, const T* gamma, const T* beta, double eps,
                        const LnPlan& p) {
  const int64_t phase = line_phase(y, sizeof(T));
  std::vector<T> g_copy, b_copy;
  NNDL_DISPATCH(ln_forward<T>)(y, save_mean, save_rstd, x, at_line_phase(gamma, p.d, phase, g_copy),
                               at_line_phase(beta, p.d, phase, b_copy), eps, p);
}

template <class T>
void layer_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* save_mean, const T* save_rstd,
                         const T* gamma, double* workspace, const LnPlan& p) {
  std::vector<T> g_copy;
  const T* g = at_line_phase(gamma, p.d, line_phase(dx, sizeof(T)), g_copy);
  NNDL_DISPATCH(ln_backward<T>)(dx, workspace, dy, x, save_mean, save_rstd, g, p);
  if (workspace) NNDL_DISPATCH(ln_backward_finalize<T>)(dgamma, dbeta, workspace, p);
}

#define NNDL_LN_DRIVERS(T)                                                                                 \
  template void layer_norm_forward(T*, T*, T*, const T*, const T*, const T*, double, const LnPlan&);       \
  template void layer_norm_backward(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, double*, \
                                    const LnPlan&);
NNDL_LN_DRIVERS(float)
NNDL_LN_DRIVERS(double)
#undef NNDL_LN_DRIVERS

}  // namespace nndl::norm
