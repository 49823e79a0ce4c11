// nndl_fast._core dropout: forward from (seed, offset), backward from a packed mask or from
// (seed, offset) again, variational masks shared over time, and the raw Philox function.
// Probabilities and modes are checked and turned into (threshold, scale) in
// python/nndl_fast/dropout.py; arrays are checked here.
#include <pybind11/stl.h>

#include <array>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/register.hpp"
#include "dropout/dropout.hpp"
#include "rng/philox.hpp"

namespace nndl::bind {
namespace {

// x (read) and out (written): same shape and dtype; out may be x itself (in place), but
// no other overlap.
struct InOut {
  py::array x, out;
  DType dtype;
  int64_t n;
};

InOut checked_in_out(py::handle x, py::handle out, const char* x_name, const char* out_name) {
  InOut io;
  io.x = checked_array(x, x_name, false);
  io.dtype = dtype_of(io.x, x_name);
  io.out = checked_array(out, out_name, true, &io.x, x_name);
  require_dtype(io.out, io.dtype, out_name, x_name);
  io.n = static_cast<int64_t>(io.x.size());
  return io;
}

void check_overlap(const InOut& io, const py::array* mask, const char* mask_name, bool mask_written) {
  OverlapCheck ov;
  if (io.x.data() != io.out.data()) ov.add(io.x.data(), io.x.nbytes(), false, "x");
  ov.add(io.out.data(), io.out.nbytes(), true, "out");
  if (mask) ov.add(mask->data(), mask->nbytes(), mask_written, mask_name);
  ov.check();
}

template <class T>
T* ptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
template <class T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

}  // namespace

void register_dropout(py::module_& m) {
  m.def(
      "philox4x32_10",
      [](std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
        std::array<uint32_t, 4> out;
        rng::philox4x32_10(out.data(), ctr.data(), key.data());
        return out;
      },
      py::arg("counter"), py::arg("key"), "Philox4x32-10 of one 128-bit counter and 64-bit key.");

  m.def(
      "dropout_forward",
      [](py::handle x, py::handle out, py::handle mask_out, uint64_t seed, uint64_t offset,
         uint32_t threshold, double scale) {
        InOut io = checked_in_out(x, out, "x", "out");
        py::array mask;
        if (!mask_out.is_none()) mask = checked_bytes(mask_out, "mask_out", true, dropout::packed_bytes(io.n));
        check_overlap(io, mask_out.is_none() ? nullptr : &mask, "mask_out", true);
        uint8_t* mp = mask_out.is_none() ? nullptr : ptr<uint8_t>(mask);
        const dropout::Stream s{seed, offset, threshold};
        with_dtype(io.dtype, [&](auto tag) {
          using T = decltype(tag);
          T* y = ptr<T>(io.out);
          const T* xp = cptr<T>(io.x);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(dropout_forward<T>)(y, mp, xp, io.n, s, scale);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("mask_out"), py::arg("seed"), py::arg("offset"),
      py::arg("threshold"), py::arg("scale"));

  m.def(
      "dropout_mask",
      [](py::handle mask_out, int64_t n, uint64_t seed, uint64_t offset, uint32_t threshold) {
        if (n < 0) throw py::value_error("n must be >= 0");
        py::array mask = checked_bytes(mask_out, "mask_out", true, dropout::packed_bytes(n));
        uint8_t* mp = ptr<uint8_t>(mask);
        const dropout::Stream s{seed, offset, threshold};
        py::gil_scoped_release nogil;
        NNDL_DISPATCH(dropout_mask)(mp, n, s);
      },
      py::arg("mask_out"), py::arg("n"), py::arg("seed"), py::arg("offset"), py::arg("threshold"));

  m.def(
      "dropout_apply_mask",
      [](py::handle x, py::handle out, py::handle mask, double scale) {
        InOut io = checked_in_out(x, out, "grad_out", "out");
        py::array mk = checked_bytes(mask, "mask", false, dropout::packed_bytes(io.n));
        check_overlap(io, &mk, "mask", false);
        const uint8_t* mp = cptr<uint8_t>(mk);
        with_dtype(io.dtype, [&](auto tag) {
          using T = decltype(tag);
          T* y = ptr<T>(io.out);
          const T* xp = cptr<T>(io.x);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(dropout_apply_mask<T>)(y, xp, mp, io.n, scale);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("mask"), py::arg("scale"));

  // x: (T, N, F) when ntf is false, (N, T, F) when true; the mask has one bit per (n, f).
  m.def(
      "variational_dropout",
      [](py::handle x, py::handle out, py::handle mask_in, py::handle mask_out, bool ntf, uint64_t seed,
         uint64_t offset, uint32_t threshold, double scale) {
        InOut io = checked_in_out(x, out, "x", "out");
        if (io.x.ndim() != 3)
          throw py::value_error(std::string("x must be 3-D, ") + (ntf ? "(N, T, F)" : "(T, N, F)") + ", got " +
                                std::to_string(io.x.ndim()) + "-D");
        const int64_t d0 = io.x.shape(0), d1 = io.x.shape(1), F = io.x.shape(2);
        const int64_t N = ntf ? d0 : d1, Tn = ntf ? d1 : d0;
        const int64_t A = ntf ? N : 1, B = Tn, C = ntf ? F : N * F;
        const int64_t nf = N * F;
        py::array mask;
        const bool given = !mask_in.is_none(), written = !mask_out.is_none();
        if (given && written) throw py::value_error("pass mask or mask_out, not both");
        if (given) mask = checked_bytes(mask_in, "mask", false, dropout::packed_bytes(nf));
        if (written) mask = checked_bytes(mask_out, "mask_out", true, dropout::packed_bytes(nf));
        check_overlap(io, given || written ? &mask : nullptr, given ? "mask" : "mask_out", written);
        std::vector<uint8_t> scratch;
        uint8_t* mp = nullptr;
        if (given || written) {
          mp = static_cast<uint8_t*>(const_cast<void*>(mask.data()));
        } else {
          scratch.resize(static_cast<size_t>(dropout::packed_bytes(nf)));
          mp = scratch.data();
        }
        const dropout::Stream s{seed, offset, threshold};
        with_dtype(io.dtype, [&](auto tag) {
          using T = decltype(tag);
          T* y = ptr<T>(io.out);
          const T* xp = cptr<T>(io.x);
          std::vector<T> ones(static_cast<size_t>(nf), T(1)), mult(static_cast<size_t>(nf));
          py::gil_scoped_release nogil;
          if (!given) NNDL_DISPATCH(dropout_mask)(mp, nf, s);
          NNDL_DISPATCH(dropout_apply_mask<T>)(mult.data(), ones.data(), mp, nf, scale);  // (kept ? s : 0)
          NNDL_DISPATCH(mul_rows<T>)(y, xp, mult.data(), A, B, C);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("mask"), py::arg("mask_out"), py::arg("ntf"), py::arg("seed"),
      py::arg("offset"), py::arg("threshold"), py::arg("scale"));
}

}  // namespace nndl::bind
