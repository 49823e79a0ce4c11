#include "bindings/arrays.hpp"

#include <algorithm>
#include <sstream>

namespace nndl::bind {
namespace {

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s << (d ? ", " : "") << a.shape(d);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

bool same_shape(const py::array& a, const py::array& b) {
  if (a.ndim() != b.ndim()) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.shape(d) != b.shape(d)) return false;
  return true;
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

}  // namespace

void require_shape(const py::array& a, const std::vector<int64_t>& shape, const std::string& name,
                   const std::string& what) {
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t d = 0; same && d < shape.size(); ++d) same = a.shape(static_cast<py::ssize_t>(d)) == shape[d];
  if (!same)
    throw py::value_error(name + " has shape " + shape_str(a) + " but must have shape " + shape_str(shape) +
                          ": " + what);
}

DType dtype_of(const py::array& a, const std::string& name) {
  // dtype equality includes byte order: the kernels read the raw bits natively.
  const py::dtype dt = a.dtype();
  if (dt.equal(py::dtype::of<float>())) return DType::f32;
  if (dt.equal(py::dtype::of<double>())) return DType::f64;
  throw py::type_error(name + " must be float32 or float64 (native byte order), got " + dtype_str(a));
}

void require_dtype(const py::array& a, DType want, const std::string& name, const std::string& ref) {
  DType got = dtype_of(a, name);
  if (got != want)
    throw py::type_error(name + " has dtype " + dtype_str(a) + " but " + ref + " has " +
                         (want == DType::f32 ? "float32" : "float64") +
                         ": all arrays of one call share a dtype");
}

py::array checked_array(py::handle obj, const std::string& name, bool writeable,
                        const py::array* shape_of, const std::string& shape_name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(name + " must be a numpy.ndarray, got " + describe(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(name + " must be C-contiguous (a copy would not receive the update); "
                                 "pass np.ascontiguousarray(...) and keep that array");
  if (writeable && !a.writeable()) throw py::value_error(name + " is read-only but is updated in place");
  if (shape_of && !same_shape(a, *shape_of))
    throw py::value_error(name + " has shape " + shape_str(a) + " but " + shape_name + " has shape " +
                          shape_str(*shape_of));
  return a;
}

namespace {

constexpr int kNpyFloat = 11, kNpyDouble = 12;  // NumPy type numbers of float32, float64

// The common case, without building any message: is `obj` an array that passes every
// check? Any failure falls back to the slow path, which names the exact problem.
bool passes(py::handle obj, int type_num, bool writeable, const py::array* ref) {
  if (!py::isinstance<py::array>(obj)) return false;
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!(a.flags() & py::array::c_style) || (writeable && !a.writeable())) return false;
  const py::dtype dt = a.dtype();
  if (dt.num() != type_num || dt.byteorder() == '>') return false;
  return !ref || same_shape(a, *ref);
}

py::handle item(py::handle seq, size_t k) {
  return PyList_Check(seq.ptr()) ? PyList_GET_ITEM(seq.ptr(), k) : PyTuple_GET_ITEM(seq.ptr(), k);
}

std::string indexed(const char* name, size_t k) { return std::string(name) + "[" + std::to_string(k) + "]"; }

// A torch tensor (anything with .detach() and .numpy()) as the NumPy view of its memory;
// anything else unchanged, for checked_array to reject with its message.
py::object as_array_view(py::handle obj, const char* name, size_t k) {
  if (py::isinstance<py::array>(obj) || !py::hasattr(obj, "detach") || !py::hasattr(obj, "numpy"))
    return py::reinterpret_borrow<py::object>(obj);
  try {
    return obj.attr("detach")().attr("numpy")();
  } catch (py::error_already_set& e) {
    throw py::type_error(indexed(name, k) + " could not be viewed as a NumPy array: " + std::string(e.what()));
  }
}

}  // namespace

py::array checked_bytes(py::handle obj, const std::string& name, bool writeable, int64_t nbytes) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(name + " must be a numpy.ndarray of uint8, got " + describe(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().equal(py::dtype::of<uint8_t>()))
    throw py::type_error(name + " must be a numpy.ndarray of uint8, got " + describe(obj));
  if (a.ndim() != 1 || a.shape(0) != nbytes)
    throw py::value_error(name + " must have shape (" + std::to_string(nbytes) + ",) (one bit per element, "
                          "8 per byte), got shape " + shape_str(a));
  checked_array(obj, name, writeable);
  return a;
}

void require_min_ndim(const py::array& a, py::ssize_t min_ndim, const std::string& name,
                      const std::string& layout) {
  if (a.ndim() < min_ndim)
    throw py::value_error(name + " must have at least " + std::to_string(min_ndim) + " dimensions " + layout +
                          ", got shape " + shape_str(a));
}

CheckedLists check_lists(const std::vector<ListArg>& args) {
  CheckedLists out;
  const ListArg& first = args.at(0);
  if (!py::isinstance<py::list>(first.list) && !py::isinstance<py::tuple>(first.list))
    throw py::type_error(std::string(first.name) + " must be a list of arrays, got " + describe(first.list));
  const size_t count = py::len(first.list);
  if (count == 0) throw py::value_error(std::string(first.name) + " is an empty list");
  {
    py::object v0 = as_array_view(item(first.list, 0), first.name, 0);
    py::array a0 = checked_array(v0, indexed(first.name, 0), first.writeable);
    out.dtype = dtype_of(a0, indexed(first.name, 0));
  }
  const int type_num = out.dtype == DType::f32 ? kNpyFloat : kNpyDouble;

  std::vector<py::array> ref;  // arrays of the first list, fixing shapes
  ref.reserve(count);
  OverlapCheck overlap;
  out.ptrs.resize(args.size());
  out.present.resize(args.size());
  out.numel.resize(count);
  for (size_t j = 0; j < args.size(); ++j) {
    const ListArg& arg = args[j];
    if (arg.optional && arg.list.is_none()) continue;
    if (!py::isinstance<py::list>(arg.list) && !py::isinstance<py::tuple>(arg.list))
      throw py::type_error(std::string(arg.name) + " must be a list of arrays, got " + describe(arg.list));
    const size_t len = py::len(arg.list);
    if (len != count)
      throw py::value_error(std::string(arg.name) + " has " + std::to_string(len) + " arrays but " + first.name +
                            " has " + std::to_string(count));
    out.present[j] = true;
    out.ptrs[j].resize(count);
    for (size_t k = 0; k < count; ++k) {
      py::handle obj = item(arg.list, k);
      if (!py::isinstance<py::array>(obj)) {
        out.keepalive.push_back(as_array_view(obj, arg.name, k));
        obj = out.keepalive.back();
      }
      const py::array* shape_ref = j ? &ref[k] : nullptr;
      if (!passes(obj, type_num, arg.writeable, shape_ref)) {  // slow path: raise the precise error
        py::array a = checked_array(obj, indexed(arg.name, k), arg.writeable, shape_ref, indexed(first.name, k));
        require_dtype(a, out.dtype, indexed(arg.name, k), indexed(first.name, 0));
      }
      auto a = py::reinterpret_borrow<py::array>(obj);
      if (j == 0) {
        ref.push_back(a);
        out.numel[k] = static_cast<int64_t>(a.size());
      }
      out.ptrs[j][k] = const_cast<void*>(a.data());
      overlap.add(a.data(), static_cast<int64_t>(a.nbytes()), arg.writeable, arg.name, static_cast<int64_t>(k));
    }
  }
  overlap.check();
  return out;
}

void OverlapCheck::add(const void* data, int64_t bytes, bool written, std::string label) {
  if (bytes <= 0) return;  // an empty array aliases nothing
  auto b = reinterpret_cast<uintptr_t>(data);
  ranges_.push_back({b, b + static_cast<uintptr_t>(bytes), written, nullptr, -1, std::move(label)});
}

void OverlapCheck::add(const void* data, int64_t bytes, bool written, const char* name, int64_t index) {
  if (bytes <= 0) return;
  auto b = reinterpret_cast<uintptr_t>(data);
  ranges_.push_back({b, b + static_cast<uintptr_t>(bytes), written, name, index, {}});
}

std::string OverlapCheck::Range::describe() const {
  return name ? indexed(name, static_cast<size_t>(index)) : label;
}

void OverlapCheck::check() const {
  std::vector<const Range*> order;
  order.reserve(ranges_.size());
  for (const Range& r : ranges_) order.push_back(&r);
  std::sort(order.begin(), order.end(), [](const Range* a, const Range* b) { return a->begin < b->begin; });
  // Sweep in address order; `open` is the range reaching furthest so far (written ones preferred).
  const Range* open_any = nullptr;
  const Range* open_written = nullptr;
  for (const Range* r : order) {
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
