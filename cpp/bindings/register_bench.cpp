// Bandwidth probes used by nndl_fast.bench.
#include "bench/stream.hpp"
#include "bindings/arrays.hpp"
#include "bindings/register.hpp"

namespace nndl::bind {
namespace py = pybind11;

namespace {
float* f32_buffer(py::handle obj, const char* name, bool writeable) {
  py::array a = checked_array(obj, name, writeable);
  require_dtype(a, DType::f32, name, "the probe (float32 only)");
  return static_cast<float*>(const_cast<void*>(a.data()));
}
int64_t size_of(py::handle obj) { return static_cast<int64_t>(py::reinterpret_borrow<py::array>(obj).size()); }
}  // namespace

void register_bench(py::module_& m) {
  m.def("stream_copy", [](py::handle out, py::handle src) {
    float* o = f32_buffer(out, "out", true);
    const float* i = f32_buffer(src, "src", false);
    if (size_of(out) != size_of(src)) throw py::value_error("out and src differ in size");
    py::gil_scoped_release nogil;
    NNDL_DISPATCH(stream_copy)(o, i, size_of(out));
  }, py::arg("out"), py::arg("src"), "out = src (STREAM copy)");
  m.def("stream_triad", [](py::handle out, py::handle a, py::handle b, float s) {
    float* o = f32_buffer(out, "out", true);
    const float* pa = f32_buffer(a, "a", false);
    const float* pb = f32_buffer(b, "b", false);
    if (size_of(out) != size_of(a) || size_of(out) != size_of(b)) throw py::value_error("out, a and b differ in size");
    py::gil_scoped_release nogil;
    NNDL_DISPATCH(stream_triad)(o, pa, pb, s, size_of(out));
  }, py::arg("out"), py::arg("a"), py::arg("b"), py::arg("s"), "out = a + s*b (STREAM triad)");
  m.def("stream_inplace", [](py::handle x, float s) {
    float* px = f32_buffer(x, "x", true);
    py::gil_scoped_release nogil;
    NNDL_DISPATCH(stream_inplace)(px, s, size_of(x));
  }, py::arg("x"), py::arg("s"), "x = s*x + 1 (in-place read-modify-write)");
}

}  // namespace nndl::bind
