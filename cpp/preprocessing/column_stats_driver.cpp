// The statistics driver (compiled once): partials of every block, then their fold into the
// running state in block order (column_stats.hpp).
#include <memory>

#include "preprocessing/column_stats.hpp"

namespace nndl::prep {

template <class T>
void column_stats_update(double* state, const T* x, int64_t n, int64_t d, bool f_order, bool omit_nan, bool moments,
                         bool minmax) {
  if (n <= 0 || d <= 0) return;
  const int64_t blocks = stats_blocks(n);
  // Every record is written by the kernel: no zeroing.
  const std::unique_ptr<double[]> partial(new double[static_cast<size_t>(blocks * kFields * d)]);
  NNDL_DISPATCH(column_stats_partial<T>)(partial.get(), x, n, d, f_order, omit_nan, moments, minmax);
  NNDL_DISPATCH(column_stats_fold)(state, partial.get(), blocks, d);
}

template void column_stats_update(double*, const float*, int64_t, int64_t, bool, bool, bool, bool);
template void column_stats_update(double*, const double*, int64_t, int64_t, bool, bool, bool, bool);

}  // namespace nndl::prep
