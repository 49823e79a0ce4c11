// Included by kernel files only (those compiled once per SIMD target).
#pragma once

#include <cstdint>

#include "parallel.hpp"

#ifndef NNDL_TARGET
#error "kernel files are compiled with -DNNDL_TARGET=<target> (see CMakeLists.txt)"
#endif

#define NNDL_RESTRICT __restrict__

namespace nndl::NNDL_TARGET {

// body(tensor, begin, end) for every chunk, in one parallel region.
template <class Body>
inline void for_each_chunk(const ChunkView& plan, const Body& body) {
#pragma omp parallel for schedule(static) if (plan.parallel)
  for (int64_t c = 0; c < plan.count; ++c) {
    const Chunk& ch = plan.chunks[c];
    body(ch.tensor, ch.begin, ch.end);
  }
}

}  // namespace nndl::NNDL_TARGET
