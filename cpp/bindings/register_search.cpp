// nndl_fast._core search: the GP sampler's posterior (python/nndl_fast/search/gp.py checks its
// hyper-parameters; arrays are checked here, by Args).
#include <string>
#include <vector>

#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "search/gp_posterior.hpp"

namespace nndl::bind {

void register_search(py::module_& m) {
  m.def(
      "gp_posterior",
      [](py::handle u_, py::handle x_, py::handle inv_ls_, py::handle alpha_, py::handle linv_, py::handle linv_t_,
         double signal_var, bool grad) {
        Args args;
        const Arg u = args.array(u_, in("u").float64().ndim(2, "(m, d)"));
        const int64_t m = u.dim(0), d = u.dim(1);
        const Arg x = args.array(x_, in("x").float64().ndim(2, "(n, d)"));
        const int64_t n = x.dim(0);
        if (x.dim(1) != d)
          throw py::value_error("u (the test points) has " + std::to_string(d) + " columns, x (the observations) " +
                                std::to_string(x.dim(1)) + ": they must be points of the same space");
        const Arg inv_ls = args.array(inv_ls_, in("inv_ls").float64().shape({d}, "(d,)"));
        const Arg alpha = args.array(alpha_, in("alpha").float64().shape({n}, "(n,) of x"));
        const Arg linv = args.array(linv_, in("linv").float64().shape({n, n}, "(n, n) of x"));
        const Arg linv_t = args.array(linv_t_, in("linv_t").float64().shape({n, n}, "(n, n) of x"));
        py::array_t<double> mean(m), var(m);
        py::array_t<double> dmean, dvar;
        if (grad) dmean = py::array_t<double>({m, d}), dvar = py::array_t<double>({m, d});
        std::vector<double> scratch(static_cast<size_t>(4 * n));
        NNDL_DISPATCH(gp_posterior)(mean.mutable_data(), var.mutable_data(), grad ? dmean.mutable_data() : nullptr,
                                    grad ? dvar.mutable_data() : nullptr, u.as<const double>(), m, x.as<const double>(),
                                    n, d, inv_ls.as<const double>(), alpha.as<const double>(), linv.as<const double>(),
                                    linv_t.as<const double>(), signal_var, scratch.data());
        if (!grad) return py::tuple(py::make_tuple(mean, var));
        return py::tuple(py::make_tuple(mean, var, dmean, dvar));
      },
      py::arg("u"), py::arg("x"), py::arg("inv_ls"), py::arg("alpha"), py::arg("linv"), py::arg("linv_t"),
      py::arg("signal_var"), py::arg("grad"),
      "(mean, var[, dmean, dvar]) of the GP posterior at the rows of u: Matérn-5/2 with length-scales 1/inv_ls, "
      "observations x, alpha = K⁻¹y, linv = L⁻¹ and linv_t = its transpose (search/gp.py, GaussianProcess.predict).");
}

}  // namespace nndl::bind
