#include "norm/weight_norm_driver.hpp"

#include <vector>

namespace nndl::norm {
namespace {

// Partial sums per row: one per chunk of kWeightNormChunk columns, none for a one-chunk row.
size_t partials(int64_t rows, int64_t cols) {
  const int64_t chunks = (cols + kWeightNormChunk - 1) / kWeightNormChunk;
  return chunks > 1 ? static_cast<size_t>(rows * chunks) : 0;
}

}  // namespace

template <class T>
void weight_norm_forward(T* w, const T* v, const T* g, int64_t rows, int64_t cols) {
  std::vector<double> partial(partials(rows, cols));
  NNDL_DISPATCH(weight_norm_forward<T>)(w, partial.data(), v, g, rows, cols);
}

template <class T>
void weight_norm_backward(T* dv, T* dg, const T* dy, const T* v, const T* g, int64_t rows, int64_t cols) {
  std::vector<double> partial(2 * partials(rows, cols));
  NNDL_DISPATCH(weight_norm_backward<T>)(dv, dg, partial.data(), dy, v, g, rows, cols);
}

template void weight_norm_forward(float*, const float*, const float*, int64_t, int64_t);
template void weight_norm_forward(double*, const double*, const double*, int64_t, int64_t);
template void weight_norm_backward(float*, float*, const float*, const float*, const float*, int64_t, int64_t);
template void weight_norm_backward(double*, double*, const double*, const double*, const double*, int64_t, int64_t);

}  // namespace nndl::norm
