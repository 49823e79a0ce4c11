// nndl_fast._core local response normalisation (1.56): forward and backward into
// caller-given outputs. Hyper-parameters are range-checked, and the convention (window,
// α or α/n) resolved, in python/nndl_fast/norm/local_response_norm.py.
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/register.hpp"
#include "norm/local_response_norm.hpp"
#include "parallel.hpp"

namespace nndl::bind {

namespace {

struct Shape3 {
  int64_t n, c, s;  // samples, channels, product of the spatial sizes
};

Shape3 shape3(const py::array& x, const char* name) {
  require_min_ndim(x, 2, name, "(N, C, spatial...)");
  int64_t s = 1;
  for (py::ssize_t d = 2; d < x.ndim(); ++d) s *= x.shape(d);
  return {static_cast<int64_t>(x.shape(0)), static_cast<int64_t>(x.shape(1)), s};
}

// A window reaching past either end of the C channels is clipped there anyway, so the
// half-widths are capped at C − 1: same result, and the backward's ring of window rows
// stays O(C) however large `size` is.
norm::LrnParams params(int64_t lo, int64_t hi, double k, double alpha, double beta, int64_t channels) {
  if (lo < 0 || hi < 0) throw py::value_error("window half-widths must be >= 0");
  const int64_t cap = channels > 1 ? channels - 1 : 0;
  lo = lo < cap ? lo : cap;
  hi = hi < cap ? hi : cap;
  // Exact special cases of d^-beta (sqrt vectorises, pow does not).
  norm::LrnPower power = beta == 0.5    ? norm::LrnPower::half
                         : beta == 0.75 ? norm::LrnPower::three_quarters
                         : beta == 1.0  ? norm::LrnPower::one
                                        : norm::LrnPower::general;
  return {lo, hi, k, alpha, beta, power};
}

void add(OverlapCheck& o, const py::array& a, bool written, const char* label) {
  o.add(a.data(), static_cast<int64_t>(a.nbytes()), written, label);
}

}  // namespace

void register_local_response_norm(py::module_& m) {
  m.def(
      "lrn_forward",
      [](py::handle out, py::handle x, int64_t lo, int64_t hi, double k, double alpha, double beta) {
        const py::array xa = checked_array(x, "x", false);
        const DType dt = dtype_of(xa, "x");
        const Shape3 sh = shape3(xa, "x");
        const norm::LrnParams p = params(lo, hi, k, alpha, beta, sh.c);
        py::array ya = checked_array(out, "out", true, &xa, "x");
        require_dtype(ya, dt, "out", "x");
        OverlapCheck o;
        add(o, xa, false, "x");
        add(o, ya, true, "out");
        o.check();
        with_dtype(dt, [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(lrn_forward<T>)(static_cast<T*>(ya.mutable_data()), static_cast<const T*>(xa.data()), p,
                                        sh.n, sh.c, sh.s);
        });
      },
      py::arg("out"), py::arg("x"), py::arg("lo"), py::arg("hi"), py::arg("k"), py::arg("alpha"),
      py::arg("beta"),
      "out_p = x_p (k + alpha sum_{j=p-lo}^{p+hi} x_j^2)^-beta over axis 1 "
      "(see nndl_fast.norm.local_response_norm).");

  m.def(
      "lrn_backward",
      [](py::handle out, py::handle grad_y, py::handle x, int64_t lo, int64_t hi, double k, double alpha,
         double beta) {
        const py::array xa = checked_array(x, "x", false);
        const DType dt = dtype_of(xa, "x");
        const Shape3 sh = shape3(xa, "x");
        norm::LrnParams p = params(lo, hi, k, alpha, beta, sh.c);
        p.threads = nndl::num_threads();
        const py::array gya = checked_array(grad_y, "grad_y", false, &xa, "x");
        require_dtype(gya, dt, "grad_y", "x");
        py::array gxa = checked_array(out, "out", true, &xa, "x");
        require_dtype(gxa, dt, "out", "x");
        OverlapCheck o;
        add(o, xa, false, "x");
        add(o, gya, false, "grad_y");
        add(o, gxa, true, "out");
        o.check();
        std::vector<double> scratch(static_cast<size_t>(norm::lrn_backward_scratch(p) * p.threads));
        with_dtype(dt, [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(lrn_backward<T>)(static_cast<T*>(gxa.mutable_data()), scratch.data(),
                                         static_cast<const T*>(gya.data()), static_cast<const T*>(xa.data()), p,
                                         sh.n, sh.c, sh.s);
        });
      },
      py::arg("out"), py::arg("grad_y"), py::arg("x"), py::arg("lo"), py::arg("hi"), py::arg("k"),
      py::arg("alpha"), py::arg("beta"),
      "Gradient of lrn_forward w.r.t. x, written into out (recomputes the denominator from x).");
}

}  // namespace nndl::bind
