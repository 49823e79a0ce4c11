#include "bindings/args.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>

namespace nndl::bind {
namespace {

constexpr int kNpyFloat = 11, kNpyDouble = 12;  // NumPy type numbers of float32, float64
constexpr int kNpyAligned = 0x0100;             // NPY_ARRAY_ALIGNED

std::vector<int64_t> dims_of(const py::array& a) {
  std::vector<int64_t> s(static_cast<size_t>(a.ndim()));
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s[static_cast<size_t>(d)] = a.shape(d);
  return s;
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

const char* dtype_name(DType d) { return d == DType::f32 ? "float32" : d == DType::f64 ? "float64" : "uint8"; }

std::string indexed(const char* name, size_t k) { return std::string(name) + "[" + std::to_string(k) + "]"; }

// A torch tensor (anything with .detach() and .numpy()) as the NumPy view of its memory;
// anything else unchanged, for the checks to reject with their message.
py::object as_array_view(py::handle obj, const Text& name) {
  if (py::isinstance<py::array>(obj) || !py::hasattr(obj, "detach") || !py::hasattr(obj, "numpy"))
    return py::reinterpret_borrow<py::object>(obj);
  try {
    return obj.attr("detach")().attr("numpy")();
  } catch (py::error_already_set& e) {
    throw py::type_error(name + " could not be viewed as a NumPy array: " + std::string(e.what()));
  }
}

// The layout checks every array gets, whatever its spec.
void require_layout(const py::array& a, const Text& name, bool written, bool f_ok = false) {
  const bool contiguous = (a.flags() & py::array::c_style) || (f_ok && (a.flags() & py::array::f_style));
  if (!contiguous) {
    const std::string what = f_ok ? " must be C- or F-contiguous" : " must be C-contiguous";
    if (written)
      throw py::value_error(name + what +
                            " (a copy would not receive the update); "
                            "pass np.ascontiguousarray(...) and keep that array");
    throw py::value_error(name + what +
                          " (the kernels read contiguous memory); "
                          "pass np.ascontiguousarray(...), or .contiguous() for a torch tensor");
  }
  if (!(a.flags() & kNpyAligned))
    throw py::value_error(name + " is not aligned to its itemsize (" + std::to_string(a.itemsize()) +
                          " bytes); pass np.require(..., requirements='A') and keep that array");
  if (written && !a.writeable()) throw py::value_error(name + " is read-only but is updated in place");
}

// The common case of a list item, without building any message: an array that passes every
// check. Any failure falls back to the slow path, which names the exact problem.

// DLPack's C ABI (dlpack.h, v0.8 and v1.x), the part read here: a capsule named "dltensor" holds
// a DLManagedTensor, one named "dltensor_versioned" a DLManagedTensorVersioned.
struct DLDevice {
  int32_t device_type;  // 1: kDLCPU
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 2: kDLFloat
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; NULL: compact row-major
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
struct DLManagedTensorVersioned {
  uint32_t major, minor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned*);
  uint64_t flags;
  DLTensor dl_tensor;
};

// The tensor of a DLPack capsule (torch.utils.dlpack.to_dlpack(t), 0.3 µs against .numpy()'s
// 0.8–1.7 µs), or nullptr for any other object. The capsule stays unconsumed: its owner's
// destructor frees the tensor when the capsule goes.
const DLTensor* dlpack_tensor(py::handle obj) {
  PyObject* o = obj.ptr();
  if (!PyCapsule_CheckExact(o)) return nullptr;
  const char* name = PyCapsule_GetName(o);
  if (name && std::strcmp(name, "dltensor") == 0)
    return &static_cast<DLManagedTensor*>(PyCapsule_GetPointer(o, name))->dl_tensor;
  if (name && std::strcmp(name, "dltensor_versioned") == 0)
    return &static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(o, name))->dl_tensor;
  return nullptr;
}

// A list item's data and shape: a NumPy array's, or a DLPack tensor's (read-only items only).
struct Item {
  void* data = nullptr;
  int ndim = 0;
  const int64_t* shape = nullptr;
  int64_t numel = 0, itemsize = 0;
};

bool same_dims(const Item& a, const Item& b) {
  return a.ndim == b.ndim && std::equal(a.shape, a.shape + a.ndim, b.shape);
}

std::string dims_str(const Item& a) { return shape_str(std::vector<int64_t>(a.shape, a.shape + a.ndim)); }

// The checks of a DLPack list item that need no other argument: on the CPU, float32 or
// float64 (its dtype in *dtype), compact row-major and aligned. Raises naming item k of `list`
// (the name is spelt out only for a message).
Item dlpack_item(const DLTensor& t, const char* list, size_t k, DType* dtype) {
  const auto name = [&] { return indexed(list, k); };
  if (t.device.device_type != 1)
    throw py::type_error(name() + " is a DLPack tensor on device type " + std::to_string(t.device.device_type) +
                         ", not the CPU");
  if (t.dtype.code != 2 || t.dtype.lanes != 1 || (t.dtype.bits != 32 && t.dtype.bits != 64))
    throw py::type_error(name() + " must be float32 or float64, got a DLPack tensor of type code " +
                         std::to_string(t.dtype.code) + ", " + std::to_string(t.dtype.bits) + " bits");
  *dtype = t.dtype.bits == 32 ? DType::f32 : DType::f64;
  Item it;
  it.data = static_cast<char*>(t.data) + t.byte_offset;
  it.ndim = t.ndim;
  it.shape = t.shape;
  it.itemsize = t.dtype.bits / 8;
  it.numel = 1;
  for (int d = 0; d < t.ndim; ++d) it.numel *= t.shape[d];
  if (t.strides && it.numel > 1) {
    int64_t step = 1;
    for (int d = t.ndim - 1; d >= 0; --d) {
      if (t.shape[d] != 1 && t.strides[d] != step)
        throw py::value_error(name() +
                              " must be C-contiguous (the kernels read contiguous memory); "
                              "pass .contiguous() for a torch tensor");
      step *= t.shape[d];
    }
  }
  if (reinterpret_cast<uintptr_t>(it.data) % static_cast<uintptr_t>(it.itemsize) != 0)
    throw py::value_error(name() + " is not aligned to its itemsize (" + std::to_string(it.itemsize) + " bytes)");
  return it;
}

Item array_item(const py::array& a) {
  static_assert(sizeof(py::ssize_t) == sizeof(int64_t));
  Item it;
  it.data = const_cast<void*>(a.data());
  it.ndim = static_cast<int>(a.ndim());
  it.shape = reinterpret_cast<const int64_t*>(a.shape());
  it.numel = static_cast<int64_t>(a.size());
  it.itemsize = static_cast<int64_t>(a.itemsize());
  return it;
}

// The common case of a list item, without building any message: an array that passes every
// check. Any failure falls back to the slow path, which names the exact problem.
bool passes(const py::array& a, int type_num, bool written, const Item* ref) {
  const int flags = a.flags();
  if (!(flags & py::array::c_style) || !(flags & kNpyAligned) || (written && !a.writeable())) return false;
  const py::dtype dt = a.dtype();
  if (dt.num() != type_num || dt.byteorder() == '>') return false;
  return !ref || same_dims(array_item(a), *ref);
}

// A new tuple holding a reference to every item: later mutation of the caller's list (by a
// callback during the check, or another thread while the GIL is released) cannot free them.
py::tuple snapshot(py::handle seq, const char* name) {
  if (!py::isinstance<py::list>(seq) && !py::isinstance<py::tuple>(seq))
    throw py::type_error(std::string(name) + " must be a list of arrays, got " + describe(seq));
  return py::reinterpret_steal<py::tuple>(PySequence_Tuple(seq.ptr()));
}

}  // namespace

Spec Spec::optional() && {
  none_ok = true;
  return std::move(*this);
}
Spec Spec::shape(Dims d, Text what) && {
  has_shape = true;
  dims = std::move(d);
  shape_what = std::move(what);
  return std::move(*this);
}
Spec Spec::ndim_at_least(int64_t n, Text layout) && {
  min_ndim = n;
  ndim_what = std::move(layout);
  return std::move(*this);
}
Spec Spec::ndim(int64_t n, Text layout) && {
  max_ndim = n;
  return std::move(*this).ndim_at_least(n, std::move(layout));
}
Spec Spec::float32() && {
  dtype = DTypeRule::f32;
  return std::move(*this);
}
Spec Spec::float64() && {
  dtype = DTypeRule::f64;
  return std::move(*this);
}
Spec Spec::bytes() && {
  dtype = DTypeRule::u8;
  return std::move(*this);
}
Spec Spec::indices() && {
  dtype = DTypeRule::index;
  return std::move(*this);
}
Spec Spec::pixels() && {
  dtype = DTypeRule::pixels;
  return std::move(*this);
}
Spec Spec::may_be(Text other) && {
  alias_of = std::move(other);
  return std::move(*this);
}
Spec Spec::c_or_f() && {
  f_ok = true;
  return std::move(*this);
}

Spec Spec::optional() const& { return Spec(*this).optional(); }
Spec Spec::shape(Dims d, Text what) const& { return Spec(*this).shape(std::move(d), std::move(what)); }
Spec Spec::ndim_at_least(int64_t n, Text layout) const& { return Spec(*this).ndim_at_least(n, std::move(layout)); }
Spec Spec::ndim(int64_t n, Text layout) const& { return Spec(*this).ndim(n, std::move(layout)); }
Spec Spec::float32() const& { return Spec(*this).float32(); }
Spec Spec::float64() const& { return Spec(*this).float64(); }
Spec Spec::bytes() const& { return Spec(*this).bytes(); }
Spec Spec::indices() const& { return Spec(*this).indices(); }
Spec Spec::pixels() const& { return Spec(*this).pixels(); }
Spec Spec::may_be(Text other) const& { return Spec(*this).may_be(std::move(other)); }
Spec Spec::c_or_f() const& { return Spec(*this).c_or_f(); }

std::vector<int64_t> Arg::shape() const { return present() ? dims_of(array_) : std::vector<int64_t>{}; }

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "(";
  for (size_t d = 0; d < shape.size(); ++d) s << (d ? ", " : "") << shape[d];
  s << (shape.size() == 1 ? ",)" : ")");
  return s.str();
}

std::string describe(py::handle obj) {
  if (py::isinstance<py::array>(obj)) return "numpy.ndarray of " + dtype_str(py::reinterpret_borrow<py::array>(obj));
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

int64_t checked_numel(const std::vector<int64_t>& dims, const std::string& name) {
  int64_t n = 1;
  for (int64_t d : dims)
    if (d < 0) throw py::value_error(name + " has a negative size in " + shape_str(dims));
  for (int64_t d : dims) {
    if (d == 0) return 0;
    if (n > std::numeric_limits<int64_t>::max() / d)
      throw py::value_error(name + " " + shape_str(dims) + " has more elements than fit in int64");
    n *= d;
  }
  return n;
}

py::array Args::view(py::handle obj, const Text& name) {
  py::object v = as_array_view(obj, name);
  if (!py::isinstance<py::array>(v)) throw py::type_error(name + " must be a numpy.ndarray, got " + describe(v));
  owned_.push_back(v);
  return py::reinterpret_borrow<py::array>(v);
}

void Args::require_dtype(const py::array& a, DTypeRule rule, const Text& name) {
  const py::dtype dt = a.dtype();
  if (rule == DTypeRule::u8) {
    if (!dt.equal(py::dtype::of<uint8_t>()))
      throw py::type_error(name + " must be a numpy.ndarray of uint8, got " + describe(a));
    return;
  }
  if (rule == DTypeRule::index) {
    if (!dt.equal(py::dtype::of<int32_t>()) && !dt.equal(py::dtype::of<int64_t>()))
      throw py::type_error(name + " must be int32 or int64 class indices (native byte order), got " + dtype_str(a));
    return;
  }
  // dtype equality includes byte order: the kernels read the raw bits natively.
  DType got;
  if (rule == DTypeRule::pixels) {
    if (dt.equal(py::dtype::of<uint8_t>()))
      got = DType::u8;
    else if (dt.equal(py::dtype::of<float>()))
      got = DType::f32;
    else
      throw py::type_error(name + " must be uint8 or float32 (native byte order), got " + dtype_str(a));
  } else if (dt.equal(py::dtype::of<float>()))
    got = DType::f32;
  else if (dt.equal(py::dtype::of<double>()))
    got = DType::f64;
  else
    throw py::type_error(name + " must be float32 or float64 (native byte order), got " + dtype_str(a));
  if (rule == DTypeRule::f64 || rule == DTypeRule::f32) {
    const DType want = rule == DTypeRule::f64 ? DType::f64 : DType::f32;
    if (got != want) throw py::type_error(name + " must be " + dtype_name(want) + ", got " + dtype_str(a));
    return;
  }
  if (!have_dtype_) {
    have_dtype_ = true;
    dtype_ = got;
    dtype_from_ = name;
    dtype_from_list_ = nullptr;
  } else if (got != dtype_) {
    throw py::type_error(name + " has dtype " + dtype_str(a) + " but " + dtype_source() + " has " + dtype_name(dtype_) +
                         ": all arrays of one call share a dtype");
  }
}

std::string Args::dtype_source() const {
  return dtype_from_list_ ? indexed(dtype_from_list_, dtype_from_index_) : dtype_from_.str();
}

bool Args::holds_integers(py::handle obj, const Text& name) {
  if (obj.is_none()) return false;
  py::object v = as_array_view(obj, name);
  if (!py::isinstance<py::array>(v)) return false;
  const char kind = py::reinterpret_borrow<py::array>(v).dtype().kind();
  return kind == 'i' || kind == 'u' || kind == 'b';
}

Arg Args::array(py::handle obj, const Spec& spec) {
  if (obj.is_none()) {
    if (spec.none_ok) return Arg{};
    throw py::type_error(spec.name + " must be a numpy.ndarray, got None");
  }
  py::array a = view(obj, spec.name);
  require_dtype(a, spec.dtype, spec.name);
  require_layout(a, spec.name, spec.written, spec.f_ok);
  if (spec.max_ndim == spec.min_ndim && a.ndim() != spec.min_ndim)
    throw py::value_error(spec.name + " must have " + std::to_string(spec.min_ndim) + " dimensions " + spec.ndim_what +
                          ", got shape " + shape_str(dims_of(a)));
  if (a.ndim() < spec.min_ndim)
    throw py::value_error(spec.name + " must have at least " + std::to_string(spec.min_ndim) + " dimensions " +
                          spec.ndim_what + ", got shape " + shape_str(dims_of(a)));
  if (spec.has_shape && !spec.dims.shape_of(a))
    throw py::value_error(spec.name + " has shape " + shape_str(dims_of(a)) + " but must have shape " +
                          shape_str(spec.dims.vec()) + ": " + spec.shape_what);
  bool in_place = false;
  if (!spec.alias_of.empty())
    for (size_t i = 0; i < named_.size(); ++i)
      if (named_[i].first == spec.alias_of && named_[i].second == a.data()) in_place = true;
  // An argument that is exactly its allowed alias (same start, and so same shape and dtype,
  // checked above) is not a second range: the kernel reads and writes it element by element.
  if (!in_place) add_range(a.data(), static_cast<int64_t>(a.nbytes()), spec.written, spec.name);
  named_.push_back({spec.name, a.data()});
  return Arg(a);
}

Arg Args::output(py::handle obj, const Spec& spec) {
  if (!obj.is_none()) return array(obj, spec);
  std::vector<py::ssize_t> shape(spec.dims.begin(), spec.dims.end());
  py::array fresh = dtype_ == DType::f32  ? py::array(py::array_t<float>(shape))
                    : dtype_ == DType::u8 ? py::array(py::array_t<uint8_t>(shape))
                                          : py::array(py::array_t<double>(shape));
  owned_.push_back(fresh);
  named_.push_back({spec.name, fresh.data()});  // fresh memory overlaps nothing: no range
  return Arg(fresh);
}

Arg Args::workspace(py::handle obj, int64_t doubles) {
  if (obj.is_none()) {
    py::array fresh = py::array_t<double>(static_cast<py::ssize_t>(doubles > 0 ? doubles : 1));
    owned_.push_back(fresh);
    return Arg(fresh);
  }
  Arg ws = array(obj, out("workspace").float64());
  if (ws.ndim() != 1 || ws.size() < doubles)
    throw py::value_error("workspace must be a 1-D float64 array of at least " + std::to_string(doubles) +
                          " elements for this shape, got shape " + shape_str(ws.shape()));
  return ws;
}

Lists Args::lists(const std::vector<ListSpec>& specs) {
  Lists out;
  out.ptrs.resize(specs.size());
  out.present.resize(specs.size());
  // Snapshot every list before any callback (a tensor's .detach()) can run.
  std::vector<py::tuple> snaps(specs.size());
  owned_.reserve(owned_.size() + specs.size());
  for (size_t j = 0; j < specs.size(); ++j) {
    if (specs[j].none_ok && specs[j].list.is_none()) continue;
    snaps[j] = snapshot(specs[j].list, specs[j].name);
    owned_.push_back(snaps[j]);
    out.present[j] = true;
  }
  const char* first = specs.at(0).name;
  if (!out.present[0]) throw py::type_error(std::string(first) + " must be a list of arrays, got None");
  const size_t count = snaps[0].size();
  if (count == 0) throw py::value_error(std::string(first) + " is an empty list");
  for (size_t j = 1; j < specs.size(); ++j)
    if (out.present[j] && snaps[j].size() != count)
      throw py::value_error(std::string(specs[j].name) + " has " + std::to_string(snaps[j].size()) + " arrays but " +
                            first + " has " + std::to_string(count));

  // Tensors a `holes` list leaves out (its item is None): not checked, not in the result.
  std::vector<char> skip(count, 0);
  size_t kept = count;
  for (size_t j = 0; j < specs.size(); ++j) {
    if (!out.present[j] || !specs[j].holes) continue;
    for (size_t k = 0; k < count; ++k)
      if (!skip[k] && PyTuple_GET_ITEM(snaps[j].ptr(), static_cast<py::ssize_t>(k)) == Py_None) {
        skip[k] = 1;
        --kept;
      }
  }

  // The items of the first list, which fix the shapes (borrowed: the snapshot owns them).
  std::vector<Item> ref;
  ref.reserve(kept);
  ranges_.reserve(ranges_.size() + specs.size() * kept);
  out.numel.resize(kept);
  out.skipped = kept != count;
  int type_num = 0;
  for (size_t j = 0; j < specs.size(); ++j) {
    if (!out.present[j]) continue;
    const ListSpec& spec = specs[j];
    out.ptrs[j].resize(kept);
    size_t kk = 0;  // position among the kept tensors
    for (size_t k = 0; k < count; ++k) {
      if (skip[k]) continue;
      py::handle obj = PyTuple_GET_ITEM(snaps[j].ptr(), static_cast<py::ssize_t>(k));
      const Item* shape_ref = j ? &ref[kk] : nullptr;
      Item it;
      const DLTensor* dl = spec.written ? nullptr : dlpack_tensor(obj);
      if (dl) {  // a read-only DLPack item (nndl_fast.torch's gradients)
        DType got;
        it = dlpack_item(*dl, spec.name, k, &got);
        if (!have_dtype_) {
          have_dtype_ = true;
          dtype_ = got;
          dtype_from_list_ = spec.name;
          dtype_from_index_ = k;
        } else if (got != dtype_) {
          throw py::type_error(indexed(spec.name, k) + " has dtype " + dtype_name(got) + " but " + dtype_source() +
                               " has " + dtype_name(dtype_) + ": all arrays of one call share a dtype");
        }
        type_num = dtype_ == DType::f32 ? kNpyFloat : kNpyDouble;
        if (shape_ref && !same_dims(it, *shape_ref))
          throw py::value_error(indexed(spec.name, k) + " has shape " + dims_str(it) + " but " + indexed(first, k) +
                                " has shape " + dims_str(*shape_ref));
      } else {
        if (!py::isinstance<py::array>(obj)) {
          owned_.push_back(as_array_view(obj, indexed(spec.name, k)));
          obj = owned_.back();
        }
        if (type_num == 0 && !have_dtype_ && py::isinstance<py::array>(obj)) {
          // The first array fixes the call's dtype; its name is only spelt out if a message needs it.
          const auto a = py::reinterpret_borrow<py::array>(obj);
          for (const int num : {kNpyFloat, kNpyDouble})
            if (passes(a, num, spec.written, shape_ref)) {
              type_num = num;
              have_dtype_ = true;
              dtype_ = num == kNpyFloat ? DType::f32 : DType::f64;
              dtype_from_list_ = spec.name;
              dtype_from_index_ = k;
            }
        }
        const bool fast = type_num != 0 && py::isinstance<py::array>(obj) &&
                          passes(py::reinterpret_borrow<py::array>(obj), type_num, spec.written, shape_ref);
        if (!fast) {  // slow path: raise the precise error
          const std::string name = indexed(spec.name, k);
          if (!py::isinstance<py::array>(obj))
            throw py::type_error(name + " must be a numpy.ndarray, got " + describe(obj));
          auto a = py::reinterpret_borrow<py::array>(obj);
          require_dtype(a, DTypeRule::call, name);
          require_layout(a, name, spec.written);
          if (shape_ref && !same_dims(array_item(a), *shape_ref))
            throw py::value_error(name + " has shape " + shape_str(dims_of(a)) + " but " + indexed(first, k) +
                                  " has shape " + dims_str(*shape_ref));
          type_num = dtype_ == DType::f32 ? kNpyFloat : kNpyDouble;
        }
        it = array_item(py::reinterpret_borrow<py::array>(obj));
      }
      if (j == 0) {
        ref.push_back(it);
        out.numel[kk] = it.numel;
      }
      out.ptrs[j][kk] = it.data;
      add_range(it.data, it.numel * it.itemsize, spec.written, spec.name, static_cast<int64_t>(k));
      ++kk;
    }
  }
  out.dtype = dtype_;
  return out;
}

void Args::add_range(const void* data, int64_t bytes, bool written, const Text& label) {
  if (bytes <= 0) return;  // an empty array aliases nothing
  auto b = reinterpret_cast<uintptr_t>(data);
  ranges_.push_back({b, b + static_cast<uintptr_t>(bytes), written, label});
}

void Args::add_range(const void* data, int64_t bytes, bool written, const char* list_name, int64_t index) {
  if (bytes <= 0) return;
  auto b = reinterpret_cast<uintptr_t>(data);
  ranges_.push_back({b, b + static_cast<uintptr_t>(bytes), written, {}, index, list_name});
}

std::string Args::Range::describe() const {
  return list_name ? indexed(list_name, static_cast<size_t>(index)) : label.str();
}

void Args::check_overlap() const {
  // the ranges by address: in place for a call's few arguments, on the heap for many
  constexpr size_t kFew = 16;
  std::array<const Range*, kFew> few;
  std::vector<const Range*> many;
  const size_t n = ranges_.size();
  const Range** order = n <= kFew ? few.data() : (many.resize(n), many.data());
  for (size_t i = 0; i < n; ++i) order[i] = &ranges_[i];
  std::sort(order, order + n, [](const Range* a, const Range* b) { return a->begin < b->begin; });
  // Sweep in address order; `open` is the range reaching furthest so far (written ones preferred).
  const Range* open_any = nullptr;
  const Range* open_written = nullptr;
  for (size_t i = 0; i < n; ++i) {
    const Range* r = order[i];
    const Range* clash = nullptr;
    if (open_written && open_written->end > r->begin)
      clash = open_written;
    else if (r->written && open_any && open_any->end > r->begin)
      clash = open_any;
    if (clash)
      throw py::value_error(r->describe() + " shares memory with " + clash->describe() +
                            ", and one of them is updated in place");
    if (!open_any || r->end > open_any->end) open_any = r;
    if (r->written && (!open_written || r->end > open_written->end)) open_written = r;
  }
}

}  // namespace nndl::bind
