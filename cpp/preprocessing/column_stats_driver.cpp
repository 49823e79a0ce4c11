// The statistics driver (compiled once): partials of every block, then the fold into the
// running state in block order (column_stats.hpp).
#include <vector>

#include "preprocessing/column_stats.hpp"

namespace nndl::prep {

namespace {

// (na, ma, qa, lo_a, hi_a) ← merge with (nb, mb, qb, lo_b, hi_b) (Chan, Golub & LeVeque).
inline void merge(double* st, const double* pb, int64_t d, int64_t c) {
  const double nb = pb[kCount * d + c];
  if (nb == 0) return;
  double& na = st[kCount * d + c];
  double& ma = st[kMean * d + c];
  double& qa = st[kM2 * d + c];
  const double mb = pb[kMean * d + c], qb = pb[kM2 * d + c];
  if (na == 0) {
    na = nb, ma = mb, qa = qb;
  } else {
    const double nt = na + nb, delta = mb - ma;
    ma = ma + delta * (nb / nt);
    qa = qa + qb + delta * delta * (na * nb / nt);
    na = nt;
  }
  double& lo = st[kMin * d + c];
  double& hi = st[kMax * d + c];
  const double lb = pb[kMin * d + c], hb = pb[kMax * d + c];
  lo = lb < lo ? lb : lo;
  hi = hb > hi ? hb : hi;
}

}  // namespace

template <class T>
void column_stats_update(double* state, const T* x, int64_t n, int64_t d, bool f_order, bool omit_nan, bool moments) {
  if (n <= 0 || d <= 0) return;
  const int64_t blocks = stats_blocks(n);
  std::vector<double> partial(static_cast<size_t>(blocks * kFields * d));
  NNDL_DISPATCH(column_stats_partial<T>)(partial.data(), x, n, d, f_order, omit_nan, moments);
  // Columns are independent: each folds its blocks in block order, whatever thread runs it.
  for (int64_t b = 0; b < blocks; ++b) {
    const double* pb = partial.data() + b * kFields * d;
    for (int64_t c = 0; c < d; ++c) merge(state, pb, d, c);
  }
}

template void column_stats_update(double*, const float*, int64_t, int64_t, bool, bool, bool);
template void column_stats_update(double*, const double*, int64_t, int64_t, bool, bool, bool);

}  // namespace nndl::prep
