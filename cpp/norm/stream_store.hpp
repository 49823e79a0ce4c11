// Non-temporal ("streaming") output for the normalisation kernels' write-once outputs
// (included by kernel files only; internal linkage, one copy per SIMD target).
//
// An ordinary store first reads the destination line into the cache (read-for-ownership),
// so a pass writing y moves |y| twice over the memory bus, and y then evicts useful data
// (the input the next pass re-reads) from the L3. A streaming store writes the line
// straight to memory: one move, no eviction. It only pays when the output is far larger
// than the cache (a reader soon after would otherwise find it in the L3), so callers pick it
// with a template flag from the output's size (stream_output), outside the hot loop.
//
// The values are computed by the caller's plain loop (the same expressions, hence the same
// roundings, as the ordinary path) into a small L1 buffer, then copied out with vector
// streaming stores: only the copy uses intrinsics.
#pragma once

#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#define NNDL_HAVE_STREAM 1
#else
#define NNDL_HAVE_STREAM 0
#endif

#include "cache.hpp"
#include "simd/kernel.hpp"

namespace nndl::NNDL_TARGET {
namespace {

// A pass streams its output when the bytes it decides by (the output alone, or the pass's
// whole footprint: each caller says which) exceed the last-level cache.
inline bool stream_output(int64_t bytes) { return bytes > stream_threshold_bytes(); }

#if defined(__AVX512F__)
constexpr int64_t kStreamAlign = 64;
inline void stream_vec(float* d, const float* s) { _mm512_stream_ps(d, _mm512_loadu_ps(s)); }
inline void stream_vec(double* d, const double* s) { _mm512_stream_pd(d, _mm512_loadu_pd(s)); }
#elif defined(__AVX__)
constexpr int64_t kStreamAlign = 32;
inline void stream_vec(float* d, const float* s) { _mm256_stream_ps(d, _mm256_loadu_ps(s)); }
inline void stream_vec(double* d, const double* s) { _mm256_stream_pd(d, _mm256_loadu_pd(s)); }
#elif NNDL_HAVE_STREAM
constexpr int64_t kStreamAlign = 16;
inline void stream_vec(float* d, const float* s) { _mm_stream_ps(d, _mm_loadu_ps(s)); }
inline void stream_vec(double* d, const double* s) { _mm_stream_pd(d, _mm_loadu_pd(s)); }
#endif

// Orders this thread's streaming stores before whatever follows (they are weakly ordered);
// call once at the end of a thread's share of a pass.
inline void stream_fence() {
#if NNDL_HAVE_STREAM
  _mm_sfence();
#endif
}

// Elements of the L1 staging buffer (4 KiB).
template <class T>
constexpr int64_t kStageLen = 4096 / int64_t(sizeof(T));

// dst[0:n) = values, where fill(buf, i0, len) writes buf[j] = value(i0 + j), j < len
// (len <= kStageLen<T>). kStream: through the staging buffer and streaming stores, the
// unaligned head and the tail by ordinary stores; otherwise fill(dst + i0, i0, len) directly.
template <bool kStream, class T, class Fill>
inline void write_out(T* NNDL_RESTRICT dst, int64_t n, const Fill& fill) {
#if NNDL_HAVE_STREAM
  if constexpr (kStream) {
    constexpr int64_t V = kStreamAlign / int64_t(sizeof(T));
    int64_t head = int64_t((kStreamAlign - (reinterpret_cast<uintptr_t>(dst) % kStreamAlign)) % kStreamAlign);
    if (head % int64_t(sizeof(T)) != 0 || n < 8 * V) {  // misaligned for T, or short
      fill(dst, int64_t{0}, n);
      return;
    }
    head /= int64_t(sizeof(T));
    if (head) fill(dst, int64_t{0}, head);
    alignas(64) T buf[kStageLen<T>];
    int64_t i = head;
    for (; i + V <= n; i += kStageLen<T>) {
      const int64_t len = (n - i) / V * V < kStageLen<T> ? (n - i) / V * V : kStageLen<T>;
      fill(buf, i, len);
      for (int64_t j = 0; j < len; j += V) stream_vec(dst + i + j, buf + j);
      if (len < kStageLen<T>) {
        i += len;
        break;
      }
    }
    if (i < n) fill(dst + i, i, n - i);
    return;
  }
#endif
  fill(dst, int64_t{0}, n);
}

}  // namespace
}  // namespace nndl::NNDL_TARGET
