// The one place where arrays crossing into C++ are checked.
//
// Every failure raises TypeError (not an ndarray, wrong dtype) or ValueError (layout,
// shape, read-only, aliasing, lengths) naming the argument and index, before any kernel
// runs, so a rejected call never leaves a half-applied update. Nothing is converted or
// copied: a buffer updated in place must be the caller's own memory.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace nndl::bind {

namespace py = pybind11;

enum class DType { f32, f64 };

std::string describe(py::handle obj);  // "numpy.ndarray of float64", "list", …

// A single array argument, checked. `shape_of` (optional) must match exactly.
py::array checked_array(py::handle obj, const std::string& name, bool writeable,
                        const py::array* shape_of = nullptr, const std::string& shape_name = "");

// A packed bit mask: a 1-D, C-contiguous numpy.uint8 array of exactly `nbytes` elements.
py::array checked_bytes(py::handle obj, const std::string& name, bool writeable, int64_t nbytes);
// ValueError unless `a` has exactly `shape`; `what` says where that shape comes from
// (e.g. "(C,) with C = x.shape[1]").
void require_shape(const py::array& a, const std::vector<int64_t>& shape, const std::string& name,
                   const std::string& what);
std::string shape_str(const std::vector<int64_t>& shape);
// ValueError unless `a` has at least `min_ndim` dimensions; `layout` describes them.
void require_min_ndim(const py::array& a, py::ssize_t min_ndim, const std::string& name,
                      const std::string& layout);

DType dtype_of(const py::array& a, const std::string& name);  // float32 / float64, else TypeError
void require_dtype(const py::array& a, DType want, const std::string& name, const std::string& ref);

// One list argument of a multi-tensor call.
struct ListArg {
  const char* name;
  py::handle list;  // a list or tuple of arrays; None is allowed only when optional
  bool writeable;
  bool optional = false;
};

// Lists of arrays, checked together: the first list fixes count, dtype and shapes.
// ptrs[j][k] is tensor k of list j (empty for an absent optional list).
// A torch CPU tensor is accepted wherever an array is: it is viewed through
// .detach().numpy(), which shares its memory, and that view is kept in `keepalive`.
struct CheckedLists {
  DType dtype;
  std::vector<std::vector<void*>> ptrs;
  std::vector<int64_t> numel;
  std::vector<bool> present;
  std::vector<py::object> keepalive;
};
CheckedLists check_lists(const std::vector<ListArg>& args);

// Rejects overlapping memory when at least one side is written. Labels name the arguments.
class OverlapCheck {
 public:
  void add(const void* data, int64_t bytes, bool written, std::string label);
  // Labelled name[index], formatted only if an error is raised (`name` must outlive the check).
  void add(const void* data, int64_t bytes, bool written, const char* name, int64_t index);
  void check() const;

 private:
  struct Range {
    uintptr_t begin, end;
    bool written;
    const char* name;
    int64_t index;
    std::string label;
    std::string describe() const;
  };
  std::vector<Range> ranges_;
};

template <class T>
T* const* typed(const std::vector<void*>& v) {
  return reinterpret_cast<T* const*>(v.data());
}

template <class T>
constexpr DType dtype_for() {
  return std::is_same_v<T, float> ? DType::f32 : DType::f64;
}

// Calls fn(float{}) or fn(double{}) for the checked dtype.
template <class Fn>
decltype(auto) with_dtype(DType d, Fn&& fn) {
  if (d == DType::f32) return fn(float{});
  return fn(double{});
}

}  // namespace nndl::bind
