#include "rng/random_driver.hpp"

#include <algorithm>
#include <cmath>

namespace nndl::rng {
namespace {

// Φ(z) = erfc(−z/√2)/2: erfc of a positive argument for z < 0, where Φ is small.
double normal_cdf(double z) { return 0.5 * std::erfc(-z * 0.70710678118654752440); }

}  // namespace

Fill uniform(uint64_t seed, uint64_t offset, uint64_t start, double low, double high) {
  return Fill{seed, offset, start, Dist::uniform, low, high - low};
}

Fill normal(uint64_t seed, uint64_t offset, uint64_t start, double mean, double std) {
  return Fill{seed, offset, start, Dist::normal, mean, std};
}

Fill truncated_normal(uint64_t seed, uint64_t offset, uint64_t start, double mean, double std, double low,
                      double high) {
  const bool mirror = low > 0.0;  // draw z' on [−high, −low], x = mean − std·z'
  const double a = mirror ? -high : low, b = mirror ? -low : high;
  Fill f{seed, offset, start, Dist::truncated_normal, mean, mirror ? -std : std};
  f.p_lo = normal_cdf(a);
  f.p_range = normal_cdf(b) - f.p_lo;
  f.z_lo = a;
  f.z_hi = b;
  return f;
}

template <class T>
void fill(T* y, int64_t n, const Fill& f) {
  NNDL_DISPATCH(random_fill<T>)(y, n, f);
}

template <class T>
void fill_constant(T* y, int64_t n, double value) {
  std::fill(y, y + n, T(value));
}

template <class T>
void fill_eye(T* y, int64_t rows, int64_t cols) {
  std::fill(y, y + rows * cols, T(0));
  for (int64_t i = 0; i < std::min(rows, cols); ++i) y[i * cols + i] = T(1);
}

template <class T>
void assign(T* y, const double* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(src[i]);
}

#define NNDL_RANDOM_INSTANTIATE(T)                  \
  template void fill(T*, int64_t, const Fill&);     \
  template void fill_constant(T*, int64_t, double); \
  template void fill_eye(T*, int64_t, int64_t);     \
  template void assign(T*, const double*, int64_t);
NNDL_RANDOM_INSTANTIATE(float)
NNDL_RANDOM_INSTANTIATE(double)

}  // namespace nndl::rng
