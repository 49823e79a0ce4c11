#include "loss/softmax_cross_entropy_driver.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"

namespace nndl::loss {
namespace {

// Threads for N rows of K: one per kMinElemsPerThread elements, at most one per row.
int row_threads(int64_t N, int64_t K) {
  const int64_t by_work = N * K / kMinElemsPerThread;
  int64_t t = num_threads();
  if (by_work < t) t = by_work;
  if (N < t) t = N;
  return t < 1 ? 1 : static_cast<int>(t);
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Class of row i as int64: −1 for ignore_index (when `ignore` allows it); throws when out of range.
std::vector<int64_t> classes(Indices t, int64_t N, int64_t K, bool ignore, int64_t ignore_index) {
  std::vector<int64_t> cls(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const int64_t y = t.wide ? static_cast<const int64_t*>(t.data)[i] : static_cast<const int32_t*>(t.data)[i];
    if (ignore && y == ignore_index) {
      cls[static_cast<size_t>(i)] = -1;
    } else if (y < 0 || y >= K) {
      throw std::invalid_argument("target[" + std::to_string(i) + "] = " + std::to_string(y) +
                                  " is not a class index in [0, " + std::to_string(K) + ")" +
                                  (ignore ? " nor ignore_index (" + std::to_string(ignore_index) + ")" : ""));
    } else {
      cls[static_cast<size_t>(i)] = y;
    }
  }
  return cls;
}

// Every q_ij finite and >= 0, every row summing to 1 within soft_tolerance.
template <class T>
void check_soft(const T* q, int64_t N, int64_t K) {
  const double tol = soft_tolerance<T>(K);
  for (int64_t i = 0; i < N; ++i) {
    const T* row = q + i * K;
    double sum = 0.0;
    bool ok = true;
    for (int64_t j = 0; j < K; ++j) {
      const double v = double(row[j]);
      ok = ok && v >= 0.0 && v <= 1.0;  // NaN fails both
      sum += v;
    }
    if (!ok)
      throw std::invalid_argument("target row " + std::to_string(i) +
                                  " holds a probability outside [0, 1] (or NaN): soft targets are probabilities");
    if (!(std::fabs(sum - 1.0) <= tol))
      throw std::invalid_argument("target row " + std::to_string(i) + " sums to " + num(sum) +
                                  ": soft targets must sum to 1 within " + num(tol) + " (16·K units of rounding)");
  }
}

// Smoothing coefficients (softmax_cross_entropy.hpp's off, hot) for ε over K classes.
void smoothing(double eps, bool chapter, int64_t K, double& off, double& hot) {
  if (chapter) {
    off = K > 1 ? eps / double(K - 1) : 0.0;  // one class: no other class to spread ε over
    hot = 1.0 - eps - off;
  } else {
    off = eps / double(K);
    hot = 1.0 - eps;
  }
}

// Counts the non-finite rows (row_loss NaN); with skip, zeroes them (loss and gradient rows).
template <class T>
void settle_nonfinite(Result& r, std::vector<double>& row_loss, T* d, int64_t K, bool skip) {
  for (size_t i = 0; i < row_loss.size(); ++i) {
    if (!std::isnan(row_loss[i])) continue;
    if (r.nonfinite_rows++ == 0) r.first_nonfinite = static_cast<int64_t>(i);
    if (!skip) continue;
    row_loss[i] = 0.0;
    if (d)
      for (int64_t k = 0; k < K; ++k) d[static_cast<int64_t>(i) * K + k] = T(0);
  }
}

// The reduced loss, summed in row order; rows ← the row losses (Reduction::none).
template <class T>
void reduce_rows(Result& r, const std::vector<double>& row_loss, T* rows, Reduction red, double denom) {
  if (red == Reduction::none) {
    for (size_t i = 0; i < row_loss.size(); ++i) rows[i] = T(row_loss[i]);
    return;
  }
  double sum = 0.0;
  for (double l : row_loss) sum += l;
  r.loss = red == Reduction::mean ? (denom > 0 ? sum / denom : 0.0) : sum;
}

}  // namespace

template <class T>
double soft_tolerance(int64_t K) {
  return 16.0 * double(K > 1 ? K : 1) * std::numeric_limits<T>::epsilon() / 2;
}

template <class T>
Result softmax_cross_entropy(T* dlogits, T* rows, const T* logits, Indices target, const T* soft, const T* weight,
                             const CeOptions& o, int64_t N, int64_t K) {
  // Check everything before anything is written.
  std::vector<int64_t> cls;
  if (!soft) cls = classes(target, N, K, true, o.ignore_index);
  double W = double(K);
  if (weight) {
    W = 0.0;
    for (int64_t j = 0; j < K; ++j) {
      if (!std::isfinite(double(weight[j])))
        throw std::invalid_argument("weight[" + std::to_string(j) + "] = " + num(double(weight[j])) + " is not finite");
      W += double(weight[j]);
    }
  }
  if (soft) check_soft(soft, N, K);
  // The mean's denominator: Σ w_y over the rows not ignored (torch's), N for soft targets.
  double denom = double(N);
  if (!soft) {
    denom = 0.0;
    for (int64_t y : cls)
      if (y >= 0) denom += weight ? double(weight[y]) : 1.0;
  }
  CeCoeffs c{};
  smoothing(o.label_smoothing, o.chapter, K, c.off, c.hot);
  c.weight_sum = W;
  c.grad = o.reduction == Reduction::mean ? (denom != 0.0 ? o.grad_scale / denom : 0.0) : o.grad_scale;
  c.threads = row_threads(N, K);
  std::vector<double> row_loss(static_cast<size_t>(N));
  Result r;
  std::vector<T> scratch(dlogits ? static_cast<size_t>(c.threads * scratch_per_thread(K)) : 0);
  if (N > 0 && K > 0)
    NNDL_DISPATCH(softmax_cross_entropy_rows<T>)(dlogits, row_loss.data(), scratch.data(), logits,
                                                 soft ? nullptr : cls.data(), soft, weight, c, N, K);
  settle_nonfinite(r, row_loss, dlogits, K, o.skip_nonfinite);
  reduce_rows(r, row_loss, rows, o.reduction, denom);
  return r;
}

template <class T>
Result distillation(T* dstudent, T* rows, const T* student, const T* teacher, Indices target, const KdOptions& o,
                    int64_t N, int64_t K) {
  std::vector<int64_t> cls;
  if (target.data) cls = classes(target, N, K, false, 0);
  KdCoeffs c{};
  c.inv_temperature = 1.0 / o.temperature;
  c.kl_loss = o.alpha * o.temperature * o.temperature;
  c.kl_grad = o.alpha * o.temperature;
  c.ce = target.data ? 1.0 - o.alpha : 0.0;
  smoothing(o.label_smoothing, o.chapter, K, c.off, c.hot);
  c.grad = o.reduction == Reduction::mean ? (N > 0 ? 1.0 / double(N) : 0.0) : 1.0;
  c.threads = row_threads(N, K);
  std::vector<double> row_loss(static_cast<size_t>(N));
  Result r;
  std::vector<T> scratch(dstudent ? static_cast<size_t>(c.threads * kd_scratch_per_thread(K)) : 0);
  if (N > 0 && K > 0)
    NNDL_DISPATCH(distillation_rows<T>)(dstudent, row_loss.data(), scratch.data(), student, teacher,
                                        target.data ? cls.data() : nullptr, c, N, K);
  settle_nonfinite(r, row_loss, dstudent, K, o.skip_nonfinite);
  reduce_rows(r, row_loss, rows, o.reduction, double(N));
  return r;
}

template double soft_tolerance<float>(int64_t);
template double soft_tolerance<double>(int64_t);
template Result softmax_cross_entropy(float*, float*, const float*, Indices, const float*, const float*,
                                      const CeOptions&, int64_t, int64_t);
template Result softmax_cross_entropy(double*, double*, const double*, Indices, const double*, const double*,
                                      const CeOptions&, int64_t, int64_t);
template Result distillation(float*, float*, const float*, const float*, Indices, const KdOptions&, int64_t, int64_t);
template Result distillation(double*, double*, const double*, const double*, Indices, const KdOptions&, int64_t,
                             int64_t);

}  // namespace nndl::loss
