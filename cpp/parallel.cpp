#include "parallel.hpp"

namespace nndl {

ChunkPlan::ChunkPlan(const int64_t* numel, int64_t num_tensors, int64_t chunk_elems) {
  int64_t total_chunks = 0;
  for (int64_t t = 0; t < num_tensors; ++t) total_chunks += (numel[t] + chunk_elems - 1) / chunk_elems;
  chunks_.reserve(static_cast<size_t>(total_chunks));
  for (int64_t t = 0; t < num_tensors; ++t)
    for (int64_t b = 0; b < numel[t]; b += chunk_elems)
      chunks_.push_back({t, b, b + chunk_elems < numel[t] ? b + chunk_elems : numel[t]});
}

}  // namespace nndl
