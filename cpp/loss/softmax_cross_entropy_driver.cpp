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

// The class of each row as int64, −1 (or any negative) for ignore_index when `ignore` allows it:
// the caller's int64 array itself when its ignored rows are already negative, else a copy in
// `store`. Throws when a class is out of range.
const int64_t* classes(Indices t, int64_t N, int64_t K, bool ignore, int64_t ignore_index,
                       std::vector<int64_t>& store) {
  const auto* wide = static_cast<const int64_t*>(t.data);
  const auto* narrow = static_cast<const int32_t*>(t.data);
  auto at = [&](int64_t i) -> int64_t { return t.wide ? wide[i] : narrow[i]; };
  bool ok = true;  // one branch-free pass; the slow one below only to say which row is wrong
  if (t.wide)
    for (int64_t i = 0; i < N; ++i) ok &= (ignore && wide[i] == ignore_index) || uint64_t(wide[i]) < uint64_t(K);
  else
    for (int64_t i = 0; i < N; ++i)
      ok &= (ignore && narrow[i] == ignore_index) || uint64_t(int64_t(narrow[i])) < uint64_t(K);
  if (!ok)
    for (int64_t i = 0; i < N; ++i) {
      const int64_t y = at(i);
      if ((ignore && y == ignore_index) || (y >= 0 && y < K)) continue;
      throw std::invalid_argument("target[" + std::to_string(i) + "] = " + std::to_string(y) +
                                  " is not a class index in [0, " + std::to_string(K) + ")" +
                                  (ignore ? " nor ignore_index (" + std::to_string(ignore_index) + ")" : ""));
    }
  if (t.wide && (!ignore || ignore_index < 0)) return wide;
  store.resize(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    const int64_t y = at(i);
    store[static_cast<size_t>(i)] = ignore && y == ignore_index ? -1 : y;
  }
  return store.data();
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
void settle_nonfinite(Result& r, double* row_loss, int64_t N, T* d, int64_t K, bool skip) {
  int64_t nan = 0;  // a branch-free count first: the rows are almost always all finite
  for (int64_t i = 0; i < N; ++i) nan += row_loss[i] != row_loss[i];
  if (nan == 0) return;
  for (int64_t i = 0; i < N; ++i) {
    if (!std::isnan(row_loss[i])) continue;
    if (r.nonfinite_rows++ == 0) r.first_nonfinite = i;
    if (!skip) continue;
    row_loss[i] = 0.0;
    if (d)
      for (int64_t k = 0; k < K; ++k) d[i * K + k] = T(0);
  }
}

// The reduced loss: row i into partial sum i mod 8, the partial sums added by halves (a fixed
// order, independent of threads and targets; eight chains instead of one); rows ← the row losses
// (Reduction::none).
template <class T>
void reduce_rows(Result& r, const double* row_loss, int64_t N, T* rows, Reduction red, double denom) {
  if (red == Reduction::none) {
    for (int64_t i = 0; i < N; ++i) rows[i] = T(row_loss[i]);
    return;
  }
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= N; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += row_loss[i + l];
  for (int l = 0; i + l < N; ++l) acc[l] += row_loss[i + l];
  for (int w = 4; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  r.loss = red == Reduction::mean ? (denom > 0 ? acc[0] / denom : 0.0) : acc[0];
}

// Per-row losses: on the stack for short batches (no allocation per call), else on the heap.
struct RowLosses {
  static constexpr int64_t kStack = 512;
  double stack[kStack];
  std::vector<double> heap;
  double* data;
  explicit RowLosses(int64_t N) : data(stack) {
    if (N > kStack) {
      heap.resize(static_cast<size_t>(N));
      data = heap.data();
    }
  }
};

}  // namespace

template <class T>
double soft_tolerance(int64_t K) {
  return 16.0 * double(K > 1 ? K : 1) * std::numeric_limits<T>::epsilon() / 2;
}

template <class T>
Result softmax_cross_entropy(T* dlogits, T* rows, const T* logits, Indices target, const T* soft, const T* weight,
                             const CeOptions& o, int64_t N, int64_t K) {
  // Check everything before anything is written.
  std::vector<int64_t> cls_store;
  const int64_t* cls = soft ? nullptr : classes(target, N, K, true, o.ignore_index, cls_store);
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
    if (weight) {
      for (int64_t i = 0; i < N; ++i)
        if (cls[i] >= 0) denom += double(weight[cls[i]]);
    } else {
      int64_t kept = 0;
      for (int64_t i = 0; i < N; ++i) kept += cls[i] >= 0;
      denom = double(kept);
    }
  }
  CeCoeffs c{};
  smoothing(o.label_smoothing, o.chapter, K, c.off, c.hot);
  c.weight_sum = W;
  c.grad = o.reduction == Reduction::mean ? (denom != 0.0 ? o.grad_scale / denom : 0.0) : o.grad_scale;
  c.threads = row_threads(N, K);
  RowLosses row_loss(N);
  Result r;
  // The rows of the narrow paths (class indices, K ≤ kNarrowK) need no scratch.
  const bool needs_scratch = dlogits && (soft || K > kNarrowK);
  std::vector<T> scratch(needs_scratch ? static_cast<size_t>(c.threads * scratch_per_thread(K)) : 0);
  if (N > 0 && K > 0)
    NNDL_DISPATCH(softmax_cross_entropy_rows<T>)(dlogits, row_loss.data, scratch.data(), logits, cls, soft, weight, c,
                                                 N, K);
  settle_nonfinite(r, row_loss.data, N, dlogits, K, o.skip_nonfinite);
  reduce_rows(r, row_loss.data, N, rows, o.reduction, denom);
  return r;
}

template <class T>
Result distillation(T* dstudent, T* rows, const T* student, const T* teacher, Indices target, const KdOptions& o,
                    int64_t N, int64_t K) {
  std::vector<int64_t> cls_store;
  const int64_t* cls = target.data ? classes(target, N, K, false, 0, cls_store) : nullptr;
  KdCoeffs c{};
  c.inv_temperature = 1.0 / o.temperature;
  c.kl_loss = o.alpha * o.temperature * o.temperature;
  c.kl_grad = o.alpha * o.temperature;
  c.ce = target.data ? 1.0 - o.alpha : 0.0;
  smoothing(o.label_smoothing, o.chapter, K, c.off, c.hot);
  c.grad = o.reduction == Reduction::mean ? (N > 0 ? 1.0 / double(N) : 0.0) : 1.0;
  c.threads = row_threads(N, K);
  RowLosses row_loss(N);
  Result r;
  std::vector<T> scratch(dstudent && K > kNarrowK ? static_cast<size_t>(c.threads * kd_scratch_per_thread(K)) : 0);
  if (N > 0 && K > 0)
    NNDL_DISPATCH(distillation_rows<T>)(dstudent, row_loss.data, scratch.data(), student, teacher, cls, c, N, K);
  settle_nonfinite(r, row_loss.data, N, dstudent, K, o.skip_nonfinite);
  reduce_rows(r, row_loss.data, N, rows, o.reduction, double(N));
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
