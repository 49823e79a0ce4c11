// nndl_fast._core local response normalisation (1.56): forward and backward into
// caller-given outputs. Hyper-parameters are range-checked, and the convention (window,
// α or α/n) resolved, in python/nndl_fast/norm/local_response_norm.py; arrays are checked
// here, by Args; cpp/norm/local_response_norm_driver.hpp runs the call.
#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "norm/local_response_norm_driver.hpp"

namespace nndl::bind {

namespace {

struct Shape3 {
  int64_t n, c, s;  // samples, channels, product of the spatial sizes
};

Shape3 shape3(const Arg& x) {
  int64_t s = 1;
  for (int64_t d = 2; d < x.ndim(); ++d) s *= x.dim(d);
  return {x.dim(0), x.dim(1), s};
}

const char* const kLayout = "(N, C, spatial...)";

}  // namespace

void register_local_response_norm(py::module_& m) {
  m.def(
      "local_response_norm_forward",
      [](py::handle out_, py::handle x_, int64_t lo, int64_t hi, double k, double alpha, double beta) {
        Args args;
        const Arg x = args.array(x_, in("x").ndim_at_least(2, kLayout));
        const Arg y = args.array(out_, out("out").shape(x.shape(), "the shape of x"));
        args.check_overlap();
        const Shape3 sh = shape3(x);
        const norm::LrnWindow w{lo, hi, k, alpha, beta};
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          norm::local_response_norm_forward<T>(y.as<T>(), x.as<T>(), w, sh.n, sh.c, sh.s);
        });
      },
      py::arg("out"), py::arg("x"), py::arg("lo"), py::arg("hi"), py::arg("k"), py::arg("alpha"), py::arg("beta"),
      "out_p = x_p (k + alpha sum_{j=p-lo}^{p+hi} x_j^2)^-beta over axis 1 "
      "(see nndl_fast.norm.local_response_norm).");

  m.def(
      "local_response_norm_backward",
      [](py::handle out_, py::handle dy_, py::handle x_, int64_t lo, int64_t hi, double k, double alpha, double beta) {
        Args args;
        const Arg x = args.array(x_, in("x").ndim_at_least(2, kLayout));
        const Arg dy = args.array(dy_, in("dy").shape(x.shape(), "the shape of x"));
        const Arg dx = args.array(out_, out("out").shape(x.shape(), "the shape of x"));
        args.check_overlap();
        const Shape3 sh = shape3(x);
        const norm::LrnWindow w{lo, hi, k, alpha, beta};
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          norm::local_response_norm_backward<T>(dx.as<T>(), dy.as<T>(), x.as<T>(), w, sh.n, sh.c, sh.s);
        });
      },
      py::arg("out"), py::arg("dy"), py::arg("x"), py::arg("lo"), py::arg("hi"), py::arg("k"), py::arg("alpha"),
      py::arg("beta"),
      "Gradient of local_response_norm_forward w.r.t. x, written into out (recomputes the denominator from x).");
}

}  // namespace nndl::bind
