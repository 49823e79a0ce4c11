// Cutting a list of tensors into fixed chunks that one parallel region shares out.
//
// A multi-tensor call never forks per tensor: the plan lists (tensor, begin, end)
// chunks of every tensor, and a single `omp parallel for` walks them. Chunks have a
// fixed size, independent of the thread count, so any per-chunk partial result (norms,
// statistics) is combined in the same order whatever the number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nndl {

// 16 Ki elements: big enough to amortise scheduling, small enough that 500 tensors of
// 20 000 elements still give each thread many chunks.
constexpr int64_t kChunkElems = int64_t{1} << 14;

struct Chunk {
  int64_t tensor;
  int64_t begin;
  int64_t end;
};

// What a kernel file sees: plain pointers only (kernel files use no std containers,
// see simd/dispatch.hpp).
struct ChunkView {
  const Chunk* chunks;
  int64_t count;
  bool parallel;  // false when the whole call is one chunk: no parallel region at all
};

class ChunkPlan {
 public:
  ChunkPlan(const int64_t* numel, int64_t num_tensors, int64_t chunk_elems = kChunkElems);
  ChunkView view() const {
    return {chunks_.data(), static_cast<int64_t>(chunks_.size()), chunks_.size() > 1};
  }

 private:
  std::vector<Chunk> chunks_;
};

}  // namespace nndl
