// The shared path of every optimizer binding: check the lists, plan the chunks, release
// the GIL, run the optional non-finite guard, then the rule's kernel.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "bindings/args.hpp"
#include "optim/tensor_lists.hpp"
#include "reduce/nonfinite.hpp"

namespace nndl::bind {

// One field of a coefficient struct, by the name Python gives it: a number or a flag. An
// optional field (a formula variant) is absent from the default record, so the default path
// reads no more fields than before; `present`, if set, records whether it was given.
template <class S>
struct Field {
  const char* name;
  double S::* number = nullptr;
  bool S::* flag = nullptr;
  bool optional = false;
  bool S::* present = nullptr;
};

// A coefficient struct read by name from the dict Python builds ({"c_m": ..., "c2": ...}).
// Every required field must be present, optional ones may be, and nothing else: a misspelt or
// missing name is an error, so the Python side and the C++ struct cannot drift apart silently. (A dict, not a bound
// class: building two pybind11 objects per step cost more than the step's own overhead.)
// `optional`: one more key the dict may hold, which the caller reads itself.
template <class S, size_t N>
S read_fields(py::handle obj, const char* arg, const std::array<Field<S>, N>& fields, PyObject* optional = nullptr) {
  static const std::array<PyObject*, N> keys = [&] {  // interned once, kept for the module's life
    std::array<PyObject*, N> k{};
    for (size_t i = 0; i < N; ++i) k[i] = PyUnicode_InternFromString(fields[i].name);
    return k;
  }();
  auto expected = [&] {
    std::string s;
    for (const Field<S>& f : fields) s += (s.empty() ? "" : ", ") + std::string(f.name);
    return s;
  };
  if (!PyDict_Check(obj.ptr()))
    throw py::type_error(std::string(arg) + " must be a dict with the keys " + expected() + ", got " + describe(obj));
  static const Py_ssize_t required = [&] {
    Py_ssize_t n = 0;
    for (const Field<S>& f : fields) n += f.optional ? 0 : 1;
    return n;
  }();
  auto wrong_keys = [&] {
    return py::value_error(std::string(arg) + " must have exactly the keys " + expected() +
                           " (the variants' optional), got " +
                           py::str(py::reinterpret_borrow<py::dict>(obj).attr("keys")()).cast<std::string>());
  };
  const Py_ssize_t all = PyDict_GET_SIZE(obj.ptr());
  const Py_ssize_t extra = optional && all > required && PyDict_GetItem(obj.ptr(), optional) ? 1 : 0;
  const Py_ssize_t size = all - extra;  // the keys of `fields`
  if (size < required || size > static_cast<Py_ssize_t>(N)) throw wrong_keys();
  S s{};
  Py_ssize_t found = 0;
  for (size_t i = 0; i < N; ++i) {
    if (fields[i].optional && size == required) continue;  // the default record: no variant
    PyObject* v = PyDict_GetItemWithError(obj.ptr(), keys[i]);
    if (v == nullptr) {
      if (PyErr_Occurred()) throw py::error_already_set();
      if (fields[i].optional) continue;
      throw py::value_error(std::string(arg) + " lacks '" + fields[i].name + "' (keys: " + expected() + ")");
    }
    ++found;
    if (fields[i].present) s.*(fields[i].present) = true;
    auto where = [&] { return std::string(arg) + "['" + fields[i].name + "']"; };
    if (fields[i].flag) {
      if (!PyBool_Check(v)) throw py::type_error(where() + " must be a bool, got " + describe(v));
      s.*(fields[i].flag) = v == Py_True;
    } else {
      if (!PyFloat_Check(v) && !PyLong_Check(v)) throw py::type_error(where() + " must be a float, got " + describe(v));
      const double d = PyFloat_AsDouble(v);
      if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
      s.*(fields[i].number) = d;
    }
  }
  if (found != size) throw wrong_keys();  // an unknown key beside the optional ones
  return s;
}

// GradTerms' fields, which every terms dict holds (tensor_scale may come in addition).
constexpr size_t kGradTermFields = 5;

// The interned key "tensor_scale", kept for the module's life.
inline PyObject* tensor_scale_key() {
  static PyObject* key = PyUnicode_InternFromString("tensor_scale");
  return key;
}

// terms = {scale, l2, l1, l1_eps, decay[, tensor_scale]}: the gradient terms of
// optim/tensor_lists.hpp; the optional array tensor_scale is read by optim_step.
inline optim::GradTerms read_terms(py::handle obj) {
  using G = optim::GradTerms;
  static const std::array<Field<G>, kGradTermFields> fields{
      {{"scale", &G::scale}, {"l2", &G::l2}, {"l1", &G::l1}, {"l1_eps", &G::l1_eps}, {"decay", &G::decay}}};
  return read_fields(obj, "terms", fields, tensor_scale_key());
}

// The per-tensor factors of the tensors a step runs (clip_per_tensor): terms['tensor_scale'] has
// one float64 per item of the grads list, and a None grad's entry is dropped with its tensor.
inline std::vector<double> tensor_factors(Args& args, py::handle grads, const Lists& lists, py::handle tensor_scale) {
  const auto items = py::reinterpret_borrow<py::sequence>(grads);  // a list or tuple: Args checked it
  const auto n = static_cast<int64_t>(py::len(items));
  const Arg a = args.array(tensor_scale, in("terms['tensor_scale']").float64().shape({n}, "(len(grads),)"));
  std::vector<double> kept;
  kept.reserve(lists.numel.size());
  for (int64_t i = 0; i < n; ++i)
    if (!items[static_cast<size_t>(i)].is_none()) kept.push_back(a.as<const double>()[i]);
  if (kept.size() != lists.numel.size()) throw py::value_error("grads changed while the step read it");
  return kept;
}

// args = params, grads, then up to three state lists; terms as read_terms read it. Returns 0,
// touching nothing, when skip_nonfinite is set and a gradient holds NaN or Inf; else 1, or 2
// when a None grad left its tensor out (the optimizers then keep that parameter's step count).
template <class Launch>
int optim_step(const std::vector<ListSpec>& specs, bool skip_nonfinite, py::handle terms, const Launch& launch) {
  Args args;
  const Lists lists = args.lists(specs);
  std::vector<double> factors;
  const bool per_tensor = PyDict_GET_SIZE(terms.ptr()) != kGradTermFields;  // read_terms let only tensor_scale through
  if (per_tensor) factors = tensor_factors(args, specs[1].list, lists, PyDict_GetItem(terms.ptr(), tensor_scale_key()));
  args.check_overlap();
  const ChunkPlan plan(lists.numel.data(), static_cast<int64_t>(lists.numel.size()));
  const int applied = lists.skipped ? 2 : 1;
  return with_dtype(lists.dtype, [&](auto tag) -> int {
    using T = decltype(tag);
    optim::TensorLists<T> t{};
    t.param = typed<T>(lists.ptrs[0]);
    t.grad = reinterpret_cast<const T* const*>(lists.ptrs[1].data());
    for (size_t j = 2; j < specs.size(); ++j) t.state[j - 2] = lists.present[j] ? typed<T>(lists.ptrs[j]) : nullptr;
    t.numel = lists.numel.data();
    t.count = static_cast<int64_t>(lists.numel.size());
    t.plan = plan.view();
    if (per_tensor) t.tensor_scale = factors.data();
    int64_t total = 0;
    for (int64_t n : lists.numel) total += n;
    GilRelease nogil(total);
    if (skip_nonfinite && NNDL_DISPATCH(any_nonfinite<T>)(t.grad, t.plan)) return 0;
    launch(t);
    return applied;
  });
}

}  // namespace nndl::bind
