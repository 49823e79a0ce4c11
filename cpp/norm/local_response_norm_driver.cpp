#include "norm/local_response_norm_driver.hpp"

#include <stdexcept>
#include <vector>

#include "parallel.hpp"

namespace nndl::norm {
namespace {

// Half-widths capped at c − 1: a window reaching past either end of the channels is clipped
// there anyway, so the backward's ring of window rows stays O(c) however large the window.
LrnParams params(const LrnWindow& w, int64_t c) {
  int64_t lo = w.lo, hi = w.hi;
  const double k = w.k, alpha = w.alpha, beta = w.beta;
  // Memory safety of the scratch ring, for a direct _core call (the Python layer checks first).
  if (lo < 0 || hi < 0) throw std::invalid_argument("window half-widths lo and hi must be >= 0");
  const int64_t cap = c > 1 ? c - 1 : 0;
  lo = lo < cap ? lo : cap;
  hi = hi < cap ? hi : cap;
  // Exact special cases of d^-beta (sqrt vectorises, pow does not).
  const LrnPower power = beta == 0.5    ? LrnPower::half
                         : beta == 0.75 ? LrnPower::three_quarters
                         : beta == 1.0  ? LrnPower::one
                                        : LrnPower::general;
  // One snapshot of the thread count sizes the backward's scratch and opens its region.
  return {lo, hi, k, alpha, beta, power, ::nndl::num_threads()};
}

}  // namespace

template <class T>
void local_response_norm_forward(T* y, const T* x, const LrnWindow& w, int64_t n, int64_t c, int64_t s) {
  const LrnParams p = params(w, c);
  NNDL_DISPATCH(lrn_forward<T>)(y, x, p, n, c, s);
}

template <class T>
void local_response_norm_backward(T* dx, const T* dy, const T* x, const LrnWindow& w, int64_t n, int64_t c, int64_t s) {
  const LrnParams p = params(w, c);
  std::vector<double> scratch(static_cast<size_t>(lrn_backward_scratch(p) * p.threads));
  NNDL_DISPATCH(lrn_backward<T>)(dx, scratch.data(), dy, x, p, n, c, s);
}

template void local_response_norm_forward(float*, const float*, const LrnWindow&, int64_t, int64_t, int64_t);
template void local_response_norm_forward(double*, const double*, const LrnWindow&, int64_t, int64_t, int64_t);
template void local_response_norm_backward(float*, const float*, const float*, const LrnWindow&, int64_t, int64_t,
                                           int64_t);
template void local_response_norm_backward(double*, const double*, const double*, const LrnWindow&, int64_t, int64_t,
                                           int64_t);

}  // namespace nndl::norm
