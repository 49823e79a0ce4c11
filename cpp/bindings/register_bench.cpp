// Bandwidth probes used by nndl_fast.bench (float32 only); arrays are checked by Args.
#include "bench/stream.hpp"
#include "bindings/args.hpp"
#include "bindings/register.hpp"

namespace nndl::bind {

void register_bench(py::module_& m) {
  m.def(
      "stream_copy",
      [](py::handle out_, py::handle src_) {
        Args args;
        const Arg src = args.array(src_, in("src").float32());
        const Arg o = args.array(out_, out("out").float32().shape(src.shape(), "the shape of src"));
        args.check_overlap();
        py::gil_scoped_release nogil;
        NNDL_DISPATCH(stream_copy)(o.as<float>(), src.as<float>(), src.size());
      },
      py::arg("out"), py::arg("src"), "out = src (STREAM copy)");
  m.def(
      "stream_triad",
      [](py::handle out_, py::handle a_, py::handle b_, float s) {
        Args args;
        const Arg a = args.array(a_, in("a").float32());
        const Arg b = args.array(b_, in("b").float32().shape(a.shape(), "the shape of a"));
        const Arg o = args.array(out_, out("out").float32().shape(a.shape(), "the shape of a"));
        args.check_overlap();
        py::gil_scoped_release nogil;
        NNDL_DISPATCH(stream_triad)(o.as<float>(), a.as<float>(), b.as<float>(), s, a.size());
      },
      py::arg("out"), py::arg("a"), py::arg("b"), py::arg("s"), "out = a + s*b (STREAM triad)");
  m.def(
      "stream_inplace",
      [](py::handle x_, float s) {
        Args args;
        const Arg x = args.array(x_, out("x").float32());
        py::gil_scoped_release nogil;
        NNDL_DISPATCH(stream_inplace)(x.as<float>(), s, x.size());
      },
      py::arg("x"), py::arg("s"), "x = s*x + 1 (in-place read-modify-write)");
  m.def(
      "stream_fill",
      [](py::handle out_, float s) {
        Args args;
        const Arg o = args.array(out_, out("out").float32());
        py::gil_scoped_release nogil;
        NNDL_DISPATCH(stream_fill)(o.as<float>(), s, o.size());
      },
      py::arg("out"), py::arg("s"), "out = s (write-only fill)");
  m.def(
      "stream_sum",
      [](py::handle src_) {
        Args args;
        const Arg a = args.array(src_, in("src").float32());
        py::gil_scoped_release nogil;
        return NNDL_DISPATCH(stream_sum)(a.as<float>(), a.size());
      },
      py::arg("src"), "sum of src in float32 (read-only pass)");
}

}  // namespace nndl::bind
