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

// body(c) for every chunk index c, in one parallel region (none for a team of one: libgomp's
// region with an `if` that is false still costs a futex round trip, ~0.3 µs).
template <class Body>
inline void for_each_chunk_index(const ChunkView& plan, const Body& body) {
  if (plan.threads <= 1) {
    for (int64_t c = 0; c < plan.count; ++c) body(c);
    return;
  }
#pragma omp parallel for num_threads(plan.threads) schedule(static)
  for (int64_t c = 0; c < plan.count; ++c) body(c);
}

// body(tensor, begin, end) for every chunk, as for_each_chunk_index.
template <class Body>
inline void for_each_chunk(const ChunkView& plan, const Body& body) {
  for_each_chunk_index(plan, [&](int64_t c) { body(plan.chunks[c].tensor, plan.chunks[c].begin, plan.chunks[c].end); });
}

}  // namespace nndl::NNDL_TARGET
