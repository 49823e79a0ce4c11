// The shared path of every optimizer binding: check the lists, plan the chunks, release
// the GIL, run the optional non-finite guard, then the rule's kernel.
#pragma once

#include <vector>

#include "bindings/args.hpp"
#include "optim/tensor_lists.hpp"
#include "reduce/nonfinite.hpp"

namespace nndl::bind {

// args = params, grads, then up to three state lists. Returns false, touching nothing,
// when skip_nonfinite is set and a gradient holds NaN or Inf.
template <class Launch>
bool optim_step(const std::vector<ListSpec>& specs, bool skip_nonfinite, const Launch& launch) {
  Args args;
  const Lists lists = args.lists(specs);
  args.check_overlap();
  const ChunkPlan plan(lists.numel.data(), static_cast<int64_t>(lists.numel.size()));
  return with_dtype(lists.dtype, [&](auto tag) -> bool {
    using T = decltype(tag);
    optim::TensorLists<T> t{};
    t.param = typed<T>(lists.ptrs[0]);
    t.grad = reinterpret_cast<const T* const*>(lists.ptrs[1].data());
    for (size_t j = 2; j < specs.size(); ++j) t.state[j - 2] = lists.present[j] ? typed<T>(lists.ptrs[j]) : nullptr;
    t.numel = lists.numel.data();
    t.count = static_cast<int64_t>(lists.numel.size());
    t.plan = plan.view();
    py::gil_scoped_release nogil;
    if (skip_nonfinite && NNDL_DISPATCH(any_nonfinite<T>)(t.grad, t.plan)) return false;
    launch(t);
    return true;
  });
}

}  // namespace nndl::bind
