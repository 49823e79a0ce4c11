// Weight normalisation (1.55), forward and backward. See norm/weight_norm.hpp.
#include "norm/weight_norm.hpp"

#include <cmath>

#include "norm/moments.hpp"
#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {
namespace {

using norm::kWeightNormChunk;
// Lane j holds the sum over i ≡ j (mod kLanes), the lanes then added pairwise by sum_lanes
// (norm/moments.hpp). Every target vectorises the kLanes-wide body with its own width but
// performs the same additions, so the result is the same bits everywhere.

// Σ v[i]² over [0, n), in double.
template <class T>
double sum_sq(const T* NNDL_RESTRICT v, int64_t n) {
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) lane[j] += double(v[i + j]) * double(v[i + j]);
  }
  for (int j = 0; i + j < n; ++j) lane[j] += double(v[i + j]) * double(v[i + j]);
  return sum_lanes(lane);
}

// Σ v[i]² and Σ dy[i]·v[i] over [0, n), in double, in one sweep.
template <class T>
void sum_sq_dot(double* ss, double* dot, const T* NNDL_RESTRICT dy, const T* NNDL_RESTRICT v, int64_t n) {
  double lane_ss[kLanes] = {}, lane_dot[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) {
      const double vj = double(v[i + j]);
      lane_ss[j] += vj * vj;
      lane_dot[j] += double(dy[i + j]) * vj;
    }
  }
  for (int j = 0; i + j < n; ++j) {
    const double vj = double(v[i + j]);
    lane_ss[j] += vj * vj;
    lane_dot[j] += double(dy[i + j]) * vj;
  }
  *ss = sum_lanes(lane_ss);
  *dot = sum_lanes(lane_dot);
}

// W = c · v with c = g_i / ‖v_i‖ computed in double and rounded once to T; the product
// in T (≤ 1 ulp more than a double product, and no widening of every element).
template <class T>
void scale(T* NNDL_RESTRICT w, const T* NNDL_RESTRICT v, double c, int64_t n) {
  const T ct = T(c);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) w[i] = ct * v[i];
}

// dv = a · dy − b · v, with a = g/‖v‖ and b = a · dg/‖v‖ (coefficients in
// double, rounded once to T; the elementwise part in T, as torch does).
template <class T>
void project(T* NNDL_RESTRICT dv, const T* NNDL_RESTRICT dy, const T* NNDL_RESTRICT v, double a, double b, int64_t n) {
  const T at = T(a), bt = T(b);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dv[i] = at * dy[i] - bt * v[i];
}

struct Backward {
  double dg, a, b;
};

// From ‖v‖², dy·v and g: dg = dy·v/‖v‖, a = g/‖v‖, b = a·dg/‖v‖.
inline Backward backward_coeffs(double ss, double dot, double g) {
  const double norm = std::sqrt(ss);
  const double dg = dot / norm;
  const double a = g / norm;
  return {dg, a, a * dg / norm};
}

// Rows a thread takes at a time: 16 amortise the hand-out when there are many rows; one
// at a time when there are few (and long) ones, so both threads get work.
inline int rows_per_grab(int64_t rows) { return rows >= 256 ? 16 : 1; }

inline int64_t chunks_of(int64_t cols) {
  return cols <= kWeightNormChunk ? 1 : (cols + kWeightNormChunk - 1) / kWeightNormChunk;
}

}  // namespace

template <class T>
void weight_norm_forward(T* w, double* partial, const T* v, const T* g, int64_t rows, int64_t cols) {
  const int64_t nch = chunks_of(cols);
  const bool parallel = rows * cols >= kSerialBelow;
  if (nch == 1) {
    // Each row whole by one thread: read for ‖v_i‖, then again (from cache) to write W_i.
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(dynamic, rows_per_grab(rows)) if (parallel)
    for (int64_t r = 0; r < rows; ++r) {
      const T* vr = v + r * cols;
      scale(w + r * cols, vr, double(g[r]) / std::sqrt(sum_sq(vr, cols)), cols);
    }
    return;
  }
  const int64_t tasks = rows * nch;
#pragma omp parallel num_threads(::nndl::num_threads()) if (parallel)
  {
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t r = t / nch, begin = (t % nch) * kWeightNormChunk;
      const int64_t n = cols - begin < kWeightNormChunk ? cols - begin : kWeightNormChunk;
      partial[t] = sum_sq(v + r * cols + begin, n);
    }
    // (implicit barrier: every partial sum is ready)
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t r = t / nch, begin = (t % nch) * kWeightNormChunk;
      const int64_t n = cols - begin < kWeightNormChunk ? cols - begin : kWeightNormChunk;
      double ss = 0.0;
      for (int64_t c = 0; c < nch; ++c) ss += partial[r * nch + c];  // chunk order, fixed
      scale(w + r * cols + begin, v + r * cols + begin, double(g[r]) / std::sqrt(ss), n);
    }
  }
}

template <class T>
void weight_norm_backward(T* dv, T* dg, double* partial, const T* dy, const T* v, const T* g, int64_t rows,
                          int64_t cols) {
  const int64_t nch = chunks_of(cols);
  const bool parallel = rows * cols >= kSerialBelow;
  if (nch == 1) {
#pragma omp parallel for num_threads(::nndl::num_threads()) schedule(dynamic, rows_per_grab(rows)) if (parallel)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t off = r * cols;
      double ss, dot;
      sum_sq_dot(&ss, &dot, dy + off, v + off, cols);
      const Backward c = backward_coeffs(ss, dot, double(g[r]));
      dg[r] = T(c.dg);
      project(dv + off, dy + off, v + off, c.a, c.b, cols);
    }
    return;
  }
  const int64_t tasks = rows * nch;
  double* part_ss = partial;
  double* part_dot = partial + tasks;
#pragma omp parallel num_threads(::nndl::num_threads()) if (parallel)
  {
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t r = t / nch, begin = (t % nch) * kWeightNormChunk;
      const int64_t n = cols - begin < kWeightNormChunk ? cols - begin : kWeightNormChunk;
      sum_sq_dot(&part_ss[t], &part_dot[t], dy + r * cols + begin, v + r * cols + begin, n);
    }
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t r = t / nch, begin = (t % nch) * kWeightNormChunk;
      const int64_t n = cols - begin < kWeightNormChunk ? cols - begin : kWeightNormChunk;
      double ss = 0.0, dot = 0.0;
      for (int64_t c = 0; c < nch; ++c) {  // chunk order, fixed
        ss += part_ss[r * nch + c];
        dot += part_dot[r * nch + c];
      }
      const Backward c = backward_coeffs(ss, dot, double(g[r]));
      if (begin == 0) dg[r] = T(c.dg);
      const int64_t off = r * cols + begin;
      project(dv + off, dy + off, v + off, c.a, c.b, n);
    }
  }
}

template void weight_norm_forward(float*, double*, const float*, const float*, int64_t, int64_t);
template void weight_norm_forward(double*, double*, const double*, const double*, int64_t, int64_t);
template void weight_norm_backward(float*, float*, double*, const float*, const float*, const float*, int64_t, int64_t);
template void weight_norm_backward(double*, double*, double*, const double*, const double*, const double*, int64_t,
                                   int64_t);

}  // namespace nndl::NNDL_TARGET
