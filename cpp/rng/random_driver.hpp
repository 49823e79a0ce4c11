// Random-fill drivers: the coefficients of one fill of nndl_fast.random, computed once in
// double (compiled once, not per SIMD target); the kernel is picked through NNDL_DISPATCH.
#pragma once

#include <cstdint>

#include "rng/random.hpp"

namespace nndl::rng {

// Each fill draws elements start, start + 1, … of the stream (seed, offset) (rng/random.hpp).
// U[low, high): x = low + (high − low)·u.
Fill uniform(uint64_t seed, uint64_t offset, uint64_t start, double low, double high);
// N(mean, std²): x = mean + std·z.
Fill normal(uint64_t seed, uint64_t offset, uint64_t start, double mean, double std);
// N(mean, std²) truncated to [mean + low·std, mean + high·std] (low < high, in std units, ±inf
// allowed; the interval must meet [−30, 30]). An interval above 0 is drawn as the mirror of
// its negative, so that the probabilities Φ(low), Φ(high) sit in a tail where double keeps
// their relative precision. Φ comes from std::erfc, once per call.
Fill truncated_normal(uint64_t seed, uint64_t offset, uint64_t start, double mean, double std, double low, double high);

// y[i] ← x_i of f for i < n (T = float or double).
template <class T>
void fill(T* y, int64_t n, const Fill& f);

// y[i] ← value for i < n (nndl_fast.init.constant_, zeros_, ones_).
template <class T>
void fill_constant(T* y, int64_t n, double value);

// y ← the (rows, cols) identity: 1 where i = j, else 0 (nndl_fast.init.eye_).
template <class T>
void fill_eye(T* y, int64_t rows, int64_t cols);

// y[i] ← src[i] rounded to T, for i < n (an orthogonal matrix computed in float64).
template <class T>
void assign(T* y, const double* src, int64_t n);

}  // namespace nndl::rng
