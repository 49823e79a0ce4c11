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

std::string describe(py::handle obj) {
  if (py::isinstance<py::array>(obj))
    return "numpy.ndarray of " + dtype_str(py::reinterpret_borrow<py::array>(obj));
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
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

void require_shape(const py::array& a, const std::vector<py::ssize_t>& shape, const std::string& name,
                   const std::string& why) {
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == shape[d];
  if (same) return;
  std::ostringstream want;
  want << "(";
  for (size_t d = 0; d < shape.size(); ++d) want << (d ? ", " : "") << shape[d];
  want << (shape.size() == 1 ? ",)" : ")");
  throw py::value_error(name + " has shape " + shape_str(a) + " but must have shape " + want.str() + ", " + why);
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
  auto head = py::reinterpret_borrow<py::sequence>(first.list);
  const size_t count = py::len(head);
  if (count == 0) throw py::value_error(std::string(first.name) + " is an empty list");

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
    auto seq = py::reinterpret_borrow<py::sequence>(arg.list);
    if (py::len(seq) != count)
      throw py::value_error(std::string(arg.name) + " has " + std::to_string(py::len(seq)) +
                            " arrays but " + first.name + " has " + std::to_string(count));
    out.present[j] = true;
    out.ptrs[j].resize(count);
    for (size_t k = 0; k < count; ++k) {
      const std::string label = std::string(arg.name) + "[" + std::to_string(k) + "]";
      const std::string ref_label = std::string(first.name) + "[" + std::to_string(k) + "]";
      py::array a = checked_array(seq[k], label, arg.writeable, j ? &ref[k] : nullptr, ref_label);
      if (j == 0 && k == 0) out.dtype = dtype_of(a, label);
      require_dtype(a, out.dtype, label, std::string(first.name) + "[0]");
      if (j == 0) {
        ref.push_back(a);
        out.numel[k] = static_cast<int64_t>(a.size());
      }
      out.ptrs[j][k] = const_cast<void*>(a.data());
      overlap.add(a.data(), static_cast<int64_t>(a.nbytes()), arg.writeable, label);
    }
  }
  overlap.check();
  return out;
}

void OverlapCheck::add(const void* data, int64_t bytes, bool written, std::string label) {
  if (bytes <= 0) return;  // an empty array aliases nothing
  auto b = reinterpret_cast<uintptr_t>(data);
  ranges_.push_back({b, b + static_cast<uintptr_t>(bytes), written, std::move(label)});
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
      throw py::value_error(r->label + " shares memory with " + clash->label +
                            ", and one of them is updated in place");
    if (!open_any || r->end > open_any->end) open_any = r;
    if (r->written && (!open_written || r->end > open_written->end)) open_written = r;
  }
}

}  // namespace nndl::bind
