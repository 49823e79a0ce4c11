// The one place where arguments crossing into C++ are checked (the argument-spec helper).
//
// A binding describes each array argument with a Spec (name, dtype rule, shape rule, written
// or read, optional, may-alias) and hands it to one Args object:
//
//     Args args;
//     Arg x  = args.array(x_,  in("x"));                                  // fixes the call's dtype
//     Arg y  = args.array(y_,  out("out").shape(x.shape(), "the shape of x"));
//     Arg g  = args.array(g_,  in("gamma").optional().shape({C}, "(C,) with C = x.shape[1]"));
//     args.check_overlap();                                               // after the last argument
//
// Every failure raises TypeError (not an array, wrong dtype) or ValueError (layout, alignment,
// shape, read-only, aliasing, list lengths) naming the argument, before any kernel runs, so a
// rejected call changes nothing. Nothing is converted or copied: a buffer updated in place must
// be the caller's own memory. A torch CPU tensor is accepted wherever an array is, viewed
// zero-copy through .detach().numpy(); an item of a read-only list may also be a DLPack capsule
// (torch.utils.dlpack.to_dlpack), which costs less to make than that view.
//
// Args owns a reference to every array it checked (and a snapshot of every list), so a caller
// that empties its lists from another thread while the GIL is released, or a .detach() that
// mutates them during the check, cannot free memory a kernel is using. Keep the Args object
// alive until the kernel returns (it lives on the binding's stack).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "parallel.hpp"
#include "simd/dispatch.hpp"

namespace nndl::bind {

namespace py = pybind11;

enum class DType { f32, f64, u8 };  // u8: images only (DTypeRule::pixels)

// What dtype an argument must have.
enum class DTypeRule {
  call,    // float32 or float64, the same for every `call` argument of one call (the first fixes it)
  f64,     // always float64 (workspaces)
  f32,     // always float32 (the bandwidth probes)
  u8,      // packed bit masks
  pixels,  // uint8 or float32 images, the same for every `pixels` argument of one call (fixes DType)
  // int32 or int64 (class indices); not tied to the call's float dtype
  index,
};

// A name or a message part of a Spec: a string literal (or any text that outlives the call),
// kept as its pointer, since specs are built on every call and a message is spelt out only when a
// check fails; or a string made at run time, kept by value.
class Text {
 public:
  Text() = default;
  Text(const char* literal) : lit_(literal) {}  // NOLINT(google-explicit-constructor): as for std::string
  Text(std::string made) : own_(std::move(made)), owned_(true) {}  // NOLINT(google-explicit-constructor)
  const char* c_str() const { return owned_ ? own_.c_str() : lit_; }
  bool empty() const { return *c_str() == '\0'; }
  std::string str() const { return c_str(); }
  bool operator==(const Text& o) const { return std::strcmp(c_str(), o.c_str()) == 0; }

 private:
  const char* lit_ = "";
  std::string own_;
  bool owned_ = false;
};
inline std::string operator+(const Text& a, const std::string& b) { return a.str() + b; }
inline std::string operator+(const Text& a, const char* b) { return a.str() + b; }
inline std::string operator+(const std::string& a, const Text& b) { return a + b.c_str(); }
inline std::string operator+(const char* a, const Text& b) { return std::string(a) + b.c_str(); }

// A shape: up to kInline dimensions held in the object (no allocation), more on the heap.
class Dims {
 public:
  static constexpr size_t kInline = 6;
  Dims() = default;
  Dims(std::initializer_list<int64_t> d) { assign(d.begin(), d.size()); }
  Dims(const std::vector<int64_t>& d) { assign(d.data(), d.size()); }  // NOLINT(google-explicit-constructor)
  size_t size() const { return n_; }
  const int64_t* data() const { return n_ <= kInline ? inline_ : heap_.data(); }
  const int64_t* begin() const { return data(); }
  const int64_t* end() const { return data() + n_; }
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  // Whether the array has exactly this shape.
  bool shape_of(const py::array& a) const {
    if (static_cast<size_t>(a.ndim()) != n_) return false;
    for (size_t d = 0; d < n_; ++d)
      if (a.shape(static_cast<py::ssize_t>(d)) != data()[d]) return false;
    return true;
  }

 private:
  void assign(const int64_t* d, size_t n) {
    n_ = n;
    if (n <= kInline)
      std::copy(d, d + n, inline_);
    else
      heap_.assign(d, d + n);
  }
  int64_t inline_[kInline] = {};
  std::vector<int64_t> heap_;
  size_t n_ = 0;
};

// A vector whose first N elements live in the object: the few arguments of one call allocate
// nothing; a multi-tensor call's many spill to the heap.
template <class T, size_t N>
class SmallVec {
 public:
  void push_back(T v) {
    if (n_ < N)
      head_[n_] = std::move(v);
    else
      tail_.push_back(std::move(v));
    ++n_;
  }
  void reserve(size_t n) {
    if (n > N) tail_.reserve(n - N);
  }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return i < N ? head_[i] : tail_[i - N]; }
  const T& operator[](size_t i) const { return i < N ? head_[i] : tail_[i - N]; }
  T& back() { return (*this)[n_ - 1]; }

 private:
  std::array<T, N> head_{};
  std::vector<T> tail_;
  size_t n_ = 0;
};

struct Spec {
  Text name;
  bool written = false;  // updated in place: must be writeable, and no other argument may overlap it
  bool none_ok = false;  // None accepted: the Arg is absent (data() == nullptr)
  DTypeRule dtype = DTypeRule::call;
  bool has_shape = false;  // exact shape required
  Dims dims;
  Text shape_what;  // where the shape comes from, for the message
  int64_t min_ndim = 0;
  int64_t max_ndim = -1;  // -1: no upper bound
  Text ndim_what;
  Text alias_of;      // may be exactly this argument (in place); any other overlap is rejected
  bool f_ok = false;  // F-contiguous accepted too (Arg::f_order() tells the kernel which)

  // Each builder returns the spec with one more rule: a copy from a named spec, the spec itself
  // (moved) in a chain such as in("x").optional().shape(...).
  Spec optional() const&;
  Spec optional() &&;
  Spec shape(Dims d, Text what) const&;
  Spec shape(Dims d, Text what) &&;
  Spec ndim_at_least(int64_t n, Text layout) const&;
  Spec ndim_at_least(int64_t n, Text layout) &&;
  Spec ndim(int64_t n, Text layout) const&;  // exactly n dimensions
  Spec ndim(int64_t n, Text layout) &&;
  Spec float64() const&;
  Spec float64() &&;
  Spec float32() const&;
  Spec float32() &&;
  Spec bytes() const&;
  Spec bytes() &&;
  Spec indices() const&;
  Spec indices() &&;
  Spec pixels() const&;
  Spec pixels() &&;
  Spec may_be(Text other) const&;
  Spec may_be(Text other) &&;
  Spec c_or_f() const&;  // C- or F-contiguous (a 2-D table read column-major as well as row-major)
  Spec c_or_f() &&;
};

inline Spec in(Text name) {
  Spec s;
  s.name = std::move(name);
  return s;
}
inline Spec out(Text name) {
  Spec s = in(std::move(name));
  s.written = true;
  return s;
}

// A checked array argument (or an absent optional one).
class Arg {
 public:
  Arg() = default;
  explicit Arg(py::array a) : array_(std::move(a)), present_(true) {}
  // (A default py::array is a real empty array, not a null handle: presence is kept apart.)
  bool present() const { return present_; }
  void* data() const { return present() ? const_cast<void*>(array_.data()) : nullptr; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data());
  }
  const py::array& array() const { return array_; }
  std::vector<int64_t> shape() const;
  int64_t ndim() const { return present() ? static_cast<int64_t>(array_.ndim()) : 0; }
  int64_t dim(int64_t d) const { return static_cast<int64_t>(array_.shape(static_cast<py::ssize_t>(d))); }
  int64_t size() const { return present() ? static_cast<int64_t>(array_.size()) : 0; }
  int64_t nbytes() const { return present() ? static_cast<int64_t>(array_.nbytes()) : 0; }
  // F-contiguous and not C-contiguous (only a c_or_f() spec lets such an array through).
  bool f_order() const {
    return present() && !(array_.flags() & py::array::c_style) && (array_.flags() & py::array::f_style);
  }

 private:
  py::array array_;
  bool present_ = false;
};

// One list argument of a multi-tensor call: params, grads, state lists.
// Releases the GIL around a kernel of `elems` elements, unless it is below one thread's share
// (kMinElemsPerThread, about a microsecond of work): then releasing and re-taking it costs more
// than another Python thread could gain.
class GilRelease {
 public:
  explicit GilRelease(int64_t elems) {
    if (elems >= kMinElemsPerThread) release_.emplace();
  }

 private:
  std::optional<py::gil_scoped_release> release_;
};

struct ListSpec {
  const char* name;
  py::handle list;  // a list or tuple of arrays (torch tensors; DLPack capsules if read-only); None only when none_ok
  bool written;
  bool none_ok = false;
  bool holes = false;  // an item may be None: tensor k is then left out of every list (a grad of None)
};

// ptrs[j][k] is tensor k of list j (empty for an absent optional list); tensors left out by a
// None item of a `holes` list are not in ptrs nor numel (a call may so keep no tensor at all).
struct Lists {
  DType dtype;
  std::vector<std::vector<void*>> ptrs;
  std::vector<int64_t> numel;
  std::vector<bool> present;
  bool skipped = false;  // a `holes` list left a tensor out
};

class Args {
 public:
  // Checks one array argument against `spec` and keeps a reference to it.
  Arg array(py::handle obj, const Spec& spec);
  // Lists of arrays, checked together: the first list fixes count, dtype and shapes; every
  // array of every list is distinct memory from every other when one side is written.
  Lists lists(const std::vector<ListSpec>& specs);
  // A result the caller may preallocate: None gives a fresh C-contiguous array of the spec's
  // shape (spec.shape(...) required) and the call's dtype (fixed by an earlier argument);
  // anything else is checked as array() checks it.
  Arg output(py::handle obj, const Spec& spec);
  // A float64 scratch buffer of at least `doubles` elements: the caller's (so a training loop
  // allocates nothing per step) or, for None, a fresh one.
  Arg workspace(py::handle obj, int64_t doubles);
  // Whether obj is (or views as) an array of integers or bools: for an argument that takes
  // either class indices or float values (a loss's target), to choose its Spec.
  bool holds_integers(py::handle obj, const Text& name);
  // Rejects overlapping memory between the arguments checked so far when one side is written.
  void check_overlap() const;
  // Lets the next argument fix a new dtype: independent groups (an optimizer's param groups)
  // checked in one Args, so that check_overlap() covers all of them.
  void next_dtype() { have_dtype_ = false; }
  // The dtype of the call's float arrays (the first `call` argument fixed it).
  DType dtype() const { return dtype_; }

 private:
  TargetPin pin_;  // one SIMD target for every kernel of this call
  struct Range {
    uintptr_t begin = 0, end = 0;
    bool written = false;
    Text label;
    int64_t index = -1;
    const char* list_name = nullptr;  // list items are labelled name[index] only if an error is raised
    std::string describe() const;
  };
  void add_range(const void* data, int64_t bytes, bool written, const Text& label);
  void add_range(const void* data, int64_t bytes, bool written, const char* list_name, int64_t index);
  py::array view(py::handle obj, const Text& name);
  void require_dtype(const py::array& a, DTypeRule rule, const Text& name);

  SmallVec<py::object, 8> owned_;
  SmallVec<Range, 8> ranges_;
  SmallVec<std::pair<Text, const void*>, 8> named_;  // for may_be
  bool have_dtype_ = false;
  DType dtype_ = DType::f32;
  Text dtype_from_;
  const char* dtype_from_list_ = nullptr;  // when set, dtype_from_ is item dtype_from_index_ of this list
  size_t dtype_from_index_ = 0;
  std::string dtype_source() const;
};

// "numpy.ndarray of float64", "list", …
std::string describe(py::handle obj);
std::string shape_str(const std::vector<int64_t>& shape);

// The product of `dims` as a count of elements: ValueError naming `name` for a negative size
// or a product that does not fit in int64.
int64_t checked_numel(const std::vector<int64_t>& dims, const std::string& name);

template <class T>
T* const* typed(const std::vector<void*>& v) {
  return reinterpret_cast<T* const*>(v.data());
}

// Calls fn(float{}) or fn(double{}) for the checked dtype.
template <class Fn>
decltype(auto) with_dtype(DType d, Fn&& fn) {
  if (d == DType::f32) return fn(float{});
  return fn(double{});
}

}  // namespace nndl::bind
