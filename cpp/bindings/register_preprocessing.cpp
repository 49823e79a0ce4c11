// nndl_fast._core pre-processing: the column statistics of a (n_samples, n_features) table,
// folded into a running state, and the per-column affine map of the scalers. The
// transformers (python/nndl_fast/preprocessing.py) check their hyper-parameters; arrays are
// checked here, by Args.
#include <string>
#include <vector>

#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "preprocessing/column_stats.hpp"

namespace nndl::bind {
namespace {

const char* const kTable = "(n_samples, n_features)";

}  // namespace

void register_preprocessing(py::module_& m) {
  // Rows per statistics block: partial_fit runs of a multiple of it fold exactly as one fit does.
  m.attr("column_stats_rows") = prep::kStatsRows;

  m.def(
      "column_stats_update",
      [](py::handle x_, py::handle state_, bool omit_nan, bool moments, bool minmax) {
        if (!moments && !minmax) throw py::value_error("moments and minmax are both False: nothing to compute");
        Args args;
        const Arg x = args.array(x_, in("x").c_or_f().ndim(2, kTable));
        const int64_t n = x.dim(0), d = x.dim(1);
        const Arg st = args.array(state_, out("state").float64().shape({prep::kFields, d}, "(5, n_features of x)"));
        args.check_overlap();
        const bool f = x.f_order();
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          prep::column_stats_update<T>(st.as<double>(), x.as<T>(), n, d, f, omit_nan, moments, minmax);
        });
      },
      py::arg("x"), py::arg("state"), py::arg("omit_nan"), py::arg("moments"), py::arg("minmax") = true,
      "state (5, d) float64 = (count, mean, M2, min, max) per column, updated with the rows of x, "
      "block by block in row order. moments=False (min-max only): mean and M2 are 0, or both NaN once "
      "a counted value was NaN or inf. minmax=False (moments only): min and max stay as they were.");

  m.def(
      "column_affine",
      [](py::handle x_, py::handle out_, py::handle shift_, py::handle scale_, py::handle offset_, bool clip, double lo,
         double hi) {
        Args args;
        const Arg x = args.array(x_, in("x").c_or_f().ndim(2, kTable));
        const int64_t n = x.dim(0), d = x.dim(1);
        const bool f = x.f_order();
        py::object fresh;
        if (out_.is_none()) {  // a new array in x's memory order
          const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(d)};
          fresh = args.dtype() == DType::f32 ? py::object(f ? py::array(py::array_t<float, py::array::f_style>(shape))
                                                            : py::array(py::array_t<float>(shape)))
                                             : py::object(f ? py::array(py::array_t<double, py::array::f_style>(shape))
                                                            : py::array(py::array_t<double>(shape)));
          out_ = fresh;
        }
        const Arg y = args.array(out_, out("out").c_or_f().shape(x.shape(), "the shape of x").may_be("x"));
        if (y.f_order() != f)
          throw py::value_error(std::string("out must have the memory order of x (") + (f ? "F" : "C") +
                                "-contiguous), got the other");
        const std::vector<int64_t> vec{d};
        const Arg shift = args.array(shift_, in("shift").shape(vec, "(n_features,)"));
        const Arg scale = args.array(scale_, in("scale").shape(vec, "(n_features,)"));
        const Arg offset = args.array(offset_, in("offset").optional().shape(vec, "(n_features,)"));
        args.check_overlap();
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          py::gil_scoped_release nogil;
          NNDL_DISPATCH(column_affine<T>)(y.as<T>(), x.as<T>(), shift.as<T>(), scale.as<T>(), offset.as<T>(), n, d, f,
                                          clip, lo, hi);
        });
        return y.array();
      },
      py::arg("x"), py::arg("out"), py::arg("shift"), py::arg("scale"), py::arg("offset"), py::arg("clip"),
      py::arg("lo"), py::arg("hi"),
      "out[i, j] = (x[i, j] − shift[j])·scale[j] (+ offset[j]), clipped to [lo, hi] when clip; out=None "
      "allocates one in x's memory order; out may be x.");
}

}  // namespace nndl::bind
