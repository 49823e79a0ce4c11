#include "parallel.hpp"

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace nndl {
namespace {

std::atomic<int> g_threads{1};
std::atomic<bool> g_started{false};  // a count > 1 was handed out: libgomp may have workers
std::atomic<bool> g_forked{false};
int g_default = 0;  // omp_get_max_threads() of a thread that never set it
int g_limit = 1;

void in_forked_child() {
  if (g_started.load(std::memory_order_relaxed)) g_forked.store(true, std::memory_order_relaxed);
  g_threads.store(1, std::memory_order_relaxed);
  g_started.store(false, std::memory_order_relaxed);
}

}  // namespace

int thread_limit() { return g_limit; }

void init_threads() {
  g_limit = 4 * std::max(1, omp_get_num_procs());
  // A fresh thread sees the process default (OMP_NUM_THREADS or the processor count); the
  // importing thread may already carry a limit of its own (threadpoolctl).
  std::thread([] { g_default = omp_get_max_threads(); }).join();
  g_threads.store(std::clamp(g_default, 1, g_limit), std::memory_order_relaxed);
  pthread_atfork(nullptr, nullptr, in_forked_child);
}

int num_threads() {
  if (g_forked.load(std::memory_order_relaxed)) return 1;
  const int own = omp_get_max_threads();
  const int n = own != g_default ? std::clamp(own, 1, g_limit) : g_threads.load(std::memory_order_relaxed);
  if (n > 1 && !g_started.load(std::memory_order_relaxed)) g_started.store(true, std::memory_order_relaxed);
  return n;
}

void set_num_threads(int n) { g_threads.store(n, std::memory_order_relaxed); }

bool forked_after_threads() { return g_forked.load(std::memory_order_relaxed); }

ChunkPlan::ChunkPlan(const int64_t* numel, int64_t num_tensors, int64_t chunk_elems) {
  int64_t total_chunks = 0;
  for (int64_t t = 0; t < num_tensors; ++t) {
    total_chunks += (numel[t] + chunk_elems - 1) / chunk_elems;
    total_ += numel[t];
  }
  chunks_.reserve(static_cast<size_t>(total_chunks));
  for (int64_t t = 0; t < num_tensors; ++t)
    for (int64_t b = 0; b < numel[t]; b += chunk_elems)
      chunks_.push_back({t, b, b + chunk_elems < numel[t] ? b + chunk_elems : numel[t]});
}

ChunkView ChunkPlan::view() const {
  const int64_t count = static_cast<int64_t>(chunks_.size());
  const int64_t useful = std::min(count, total_ / kMinElemsPerThread);
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(useful, num_threads())));
  return {chunks_.data(), count, threads};
}

}  // namespace nndl
