// Clip kernels: the norm pass reads each gradient once (4 bytes per float32 element);
// scaling and clip-by-value read and write it once (8 bytes).
#include "clip/clip.hpp"

#include <cmath>

#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {
namespace {

// Sum of f(x) over [begin, end) into kNormLanes double lanes, lane = (i - begin) % lanes,
// each lane in index order; the lanes are then added left to right. No reassociation is
// left to the compiler, so every target gives the same bits.
template <class T, class F>
inline double lane_sum(const T* NNDL_RESTRICT x, int64_t begin, int64_t end, const F& f) {
  constexpr int L = clip::kNormLanes;
  double acc[L] = {};
  int64_t i = begin;
  for (; i + L <= end; i += L)
    for (int j = 0; j < L; ++j) acc[j] += f(double(x[i + j]));
  for (int j = 0; i + j < end; ++j) acc[j] += f(double(x[i + j]));
  double s = 0.0;
  for (int j = 0; j < L; ++j) s += acc[j];
  return s;
}

template <class T>
inline double max_abs(const T* NNDL_RESTRICT x, int64_t begin, int64_t end) {
  T m = T(0);
  int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (int64_t i = begin; i < end; ++i) {
    const T a = std::fabs(x[i]);
    m = a > m ? a : m;
    nan |= (a != a);
  }
  return nan ? NAN : double(m);
}

}  // namespace

template <class T>
void norm_partials(double* partials, const T* const* x, const ChunkView& plan, clip::NormKind kind, double p) {
  for_each_chunk_index(plan, [&](int64_t c) {
    const Chunk& ch = plan.chunks[c];
    const T* xs = x[ch.tensor];
    double r;
    switch (kind) {
      case clip::NormKind::l1:
        r = lane_sum(xs, ch.begin, ch.end, [](double v) { return std::fabs(v); });
        break;
      case clip::NormKind::l2:
        r = lane_sum(xs, ch.begin, ch.end, [](double v) { return v * v; });
        break;
      case clip::NormKind::linf:
        r = max_abs(xs, ch.begin, ch.end);
        break;
      default:
        r = lane_sum(xs, ch.begin, ch.end, [p](double v) { return std::pow(std::fabs(v), p); });
    }
    partials[c] = r;
  });
}

template <class T>
void scale_inplace(T* const* x, const ChunkView& plan, double coef) {
  const T c = T(coef);
  for_each_chunk(plan, [&](int64_t k, int64_t begin, int64_t end) {
    T* NNDL_RESTRICT xs = x[k];
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) xs[i] = c * xs[i];
  });
}

template <class T>
void clip_value_inplace(T* const* x, const ChunkView& plan, double lo, double hi) {
  const T a = T(lo), b = T(hi);
  for_each_chunk(plan, [&](int64_t k, int64_t begin, int64_t end) {
    T* NNDL_RESTRICT xs = x[k];
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T g = xs[i];
      const T m = g > b ? b : g;  // min(g, b), NaN kept
      xs[i] = m < a ? a : m;      // max(·, a), NaN kept
    }
  });
}

#define NNDL_CLIP_INSTANTIATE(T)                                                                   \
  template void norm_partials(double*, const T* const*, const ChunkView&, clip::NormKind, double); \
  template void scale_inplace(T* const*, const ChunkView&, double);                                \
  template void clip_value_inplace(T* const*, const ChunkView&, double, double);
NNDL_CLIP_INSTANTIATE(float)
NNDL_CLIP_INSTANTIATE(double)

}  // namespace nndl::NNDL_TARGET
