// Argument checks shared by the batch-norm and layer-norm bindings (built on arrays.hpp).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "norm/norm_plan.hpp"

namespace nndl::bind {

// An array argument after its checks; `data` is null for an absent optional argument (None).
struct NormArg {
  py::array array;
  void* data = nullptr;
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Checks obj (dtype `dtype`, C-contiguous, writeable if written, exactly `shape`) and
// registers it with the overlap check. None is accepted only when optional.
inline NormArg norm_arg(py::handle obj, const char* name, DType dtype, const std::string& dtype_ref,
                        const std::vector<int64_t>& shape, const std::string& shape_what, bool written,
                        bool optional, OverlapCheck& overlap) {
  NormArg out;
  if (obj.is_none()) {
    if (optional) return out;
    throw py::type_error(std::string(name) + " must be a numpy.ndarray, got None");
  }
  out.array = checked_array(obj, name, written);
  require_dtype(out.array, dtype, name, dtype_ref);
  require_shape(out.array, shape, name, shape_what);
  out.data = const_cast<void*>(out.array.data());
  overlap.add(out.data, static_cast<int64_t>(out.array.nbytes()), written, name);
  return out;
}

// A float64 scratch buffer of at least `doubles` elements: the caller's (so a training loop
// allocates nothing per step) or a fresh one.
inline NormArg workspace_arg(py::handle obj, int64_t doubles, OverlapCheck& overlap) {
  NormArg out;
  if (obj.is_none()) {
    out.array = py::array_t<double>(static_cast<py::ssize_t>(doubles > 0 ? doubles : 1));
  } else {
    out.array = checked_array(obj, "workspace", true);
    require_dtype(out.array, DType::f64, "workspace", "the workspace (always float64)");
    if (out.array.ndim() != 1 || out.array.size() < doubles)
      throw py::value_error("workspace must be a 1-D float64 array of at least " + std::to_string(doubles) +
                            " elements for this shape");
  }
  out.data = const_cast<void*>(out.array.data());
  overlap.add(out.data, static_cast<int64_t>(out.array.nbytes()), true, "workspace");
  return out;
}

// The n elements at p, starting `phase` elements past a 64-byte boundary (norm::line_phase):
// p itself when it already does (or is null), else a copy in `storage`. Row passes combine
// per-element parameters (γ, β) with every row; at the rows' phase a vector load of them
// splits across cache lines together with the row's, not on steps of its own (measured,
// layer norm (8192, 1024) float32 forward: 1.08x with γ, β at x's phase rather than 16
// bytes off it).
template <class T>
const T* at_line_phase(const T* p, int64_t n, int64_t phase, std::vector<T>& storage) {
  if (p == nullptr || norm::line_phase(p, sizeof(T)) == phase) return p;
  constexpr int64_t kLine = 64 / int64_t(sizeof(T));
  storage.resize(static_cast<size_t>(n + 2 * kLine));
  T* at = storage.data() + (kLine - norm::line_phase(storage.data(), sizeof(T))) % kLine + phase;
  std::copy(p, p + n, at);
  return at;
}

inline std::vector<int64_t> shape_of(const py::array& a) {
  std::vector<int64_t> s(static_cast<size_t>(a.ndim()));
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s[static_cast<size_t>(d)] = a.shape(d);
  return s;
}

}  // namespace nndl::bind
