// The process-wide thread count, and cutting a list of tensors into fixed chunks that one
// parallel region shares out.
//
// Thread count: OpenMP keeps its count per calling thread (an ICV), so omp_set_num_threads
// in one Python thread would not reach kernels called from another. The count is kept here
// instead, in one atomic, and every `omp parallel` names it in a num_threads(...) clause.
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

// Threads for the next parallel region started from the calling thread: the process-wide
// count, unless this thread's own OpenMP setting was changed (threadpoolctl's limits do that),
// which then wins for this thread. In a child forked after the module loaded: 1.
int num_threads();
// Sets the process-wide count; 1 <= n <= thread_limit() (the caller checks).
void set_num_threads(int n);
// The largest count accepted: 4 per processor. More only adds context switches to these
// memory-bound kernels, and tens of thousands make libgomp abort or crash creating them.
int thread_limit();
// Records the OpenMP default and registers the at-fork handler; called once at import.
void init_threads();
// True in a process forked after a parallel region may have started libgomp's workers:
// they do not exist in the child, and a region with more than one thread would wait for
// them forever.
bool forked_after_threads();

// 16 Ki elements: big enough to amortise scheduling, small enough that 500 tensors of
// 20 000 elements still give each thread many chunks.
constexpr int64_t kChunkElems = int64_t{1} << 14;

// A ChunkPlan's region gets one thread per this many elements (at least two chunks' worth):
// below it, waking and joining a thread costs more than the share of work it takes over.
constexpr int64_t kMinElemsPerThread = int64_t{1} << 15;

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
  int threads;  // the region's team; 1: no parallel region at all
};

class ChunkPlan {
 public:
  ChunkPlan(const int64_t* numel, int64_t num_tensors, int64_t chunk_elems = kChunkElems);
  // Reads the thread count now: the team of every region this view drives.
  ChunkView view() const;

 private:
  std::vector<Chunk> chunks_;
  int64_t total_ = 0;
};

}  // namespace nndl
