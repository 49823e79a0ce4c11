// Included by kernel files only (those compiled once per SIMD target).
#pragma once

#include <cmath>
#include <cstdint>

#include "parallel.hpp"

#ifndef NNDL_TARGET
#error "kernel files are compiled with -DNNDL_TARGET=<target> (see CMakeLists.txt)"
#endif

#define NNDL_RESTRICT __restrict__

namespace nndl::NNDL_TARGET {

// a·b + c, rounded once where the target has FMA (the AVX2 and AVX-512 builds), twice on
// baseline x86-64 (no FMA instruction; a library call per element would be far slower).
// The normalisation kernels use it where it takes an instruction out of a hot loop, so
// their results differ between SIMD targets by rounding (the tests bound it); the
// optimizers never do -- their updates are bitwise equal on every target.
template <class T>
inline T madd(T a, T b, T c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// Hints that p[0:n) will be read soon: its cache lines are fetched into the L2 (never
// faults, even past the end of an array). Row kernels call it on the next row while
// working on this one: a row of a few KiB ends before the hardware prefetcher, which stops
// at every 4 KiB page, has warmed up to it.
template <class T>
inline void prefetch_l2(const T* p, int64_t n) {
  const char* b = reinterpret_cast<const char*>(p);
  for (int64_t o = 0; o < n * int64_t(sizeof(T)); o += 64) __builtin_prefetch(b + o, 0, 2);
}

// The distance, in elements of T, at which to place arrays of n elements that one loop loads
// and stores in lockstep (lo[c] and hi[c]): 1 KiB past a multiple of 4 KiB, so the arrays'
// elements c differ in address bits 6-11 (room for four arrays): at equal bits 0-11, a load
// from one just after a store to the other can stall on the store (docs/performance-notes.md).
template <class T>
constexpr int64_t lockstep_stride(int64_t n) {
  const int64_t bytes = n * int64_t(sizeof(T));
  return (bytes + ((1024 - bytes) % 4096 + 4096) % 4096) / int64_t(sizeof(T));
}
static_assert(lockstep_stride<float>(1024) * 4 % 4096 == 1024 && lockstep_stride<double>(1024) * 8 % 4096 == 1024);
static_assert(lockstep_stride<float>(784) >= 784 && lockstep_stride<double>(1) * 8 == 1024);

// body(i) for every i in [0, n), over `threads` threads in one parallel region (none for a team
// of one: libgomp's region with an `if` that is false still costs a futex round trip, ~0.3 µs);
// then finish() once in each thread, after its share (e.g. fencing its streaming stores).
template <class Body, class Finish>
inline void for_each_index(int threads, int64_t n, const Body& body, const Finish& finish) {
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) body(i);
    finish();
    return;
  }
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
    finish();
  }
}

template <class Body>
inline void for_each_index(int threads, int64_t n, const Body& body) {
  for_each_index(threads, n, body, [] {});
}

// body(c) for every chunk index c (for_each_index over the plan's chunks).
template <class Body>
inline void for_each_chunk_index(const ChunkView& plan, const Body& body) {
  for_each_index(plan.threads, plan.count, body);
}

// body(tensor, begin, end) for every chunk, as for_each_chunk_index.
template <class Body>
inline void for_each_chunk(const ChunkView& plan, const Body& body) {
  for_each_chunk_index(plan, [&](int64_t c) { body(plan.chunks[c].tensor, plan.chunks[c].begin, plan.chunks[c].end); });
}

}  // namespace nndl::NNDL_TARGET
