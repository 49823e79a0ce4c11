// nndl_fast._core losses: softmax cross-entropy (class indices or soft targets) and the
// distillation loss, each with its gradient in the same call. Hyper-parameters are checked in
// python/nndl_fast/loss.py; arrays here, by Args; target values (class range, probability rows)
// by the driver, before anything is written.
#include "bindings/args.hpp"
#include "bindings/register.hpp"
#include "loss/softmax_cross_entropy_driver.hpp"

namespace nndl::bind {
namespace {

// Class indices (N,) of the logits' rows (`classes_what`), or probabilities (N, K) when soft
// targets are accepted (soft_what not null).
Arg target_arg(Args& args, py::handle obj, int64_t N, int64_t K, const char* classes_what, const char* soft_what) {
  if (!soft_what || args.holds_integers(obj, "target"))
    return args.array(obj, in("target").indices().optional().shape({N}, classes_what));
  return args.array(obj, in("target").shape({N, K}, soft_what));
}

loss::Indices indices(const Arg& t) {
  if (!t.present() || t.array().dtype().kind() == 'f') return {};
  return {t.data(), t.array().itemsize() == 8};
}

// (loss or row losses, gradient or None, non-finite rows, first non-finite row)
py::tuple result(const loss::Result& r, const Arg& rows, const Arg& grad) {
  py::object loss = rows.present() ? py::object(rows.array()) : py::object(py::float_(r.loss));
  py::object g = grad.present() ? py::object(grad.array()) : py::object(py::none());
  return py::make_tuple(loss, g, r.nonfinite_rows, r.first_nonfinite);
}

}  // namespace

void register_loss(py::module_& m) {
  m.def(
      "softmax_cross_entropy",
      [](py::handle logits_, py::handle target_, py::handle weight_, py::handle dlogits_, bool want_grad,
         double label_smoothing, bool chapter, int reduction, int64_t ignore_index, double grad_scale,
         bool skip_nonfinite) {
        Args args;
        const Arg z = args.array(logits_, in("logits").ndim(2, "(N, K)"));
        const int64_t N = z.dim(0), K = z.dim(1);
        if (target_.is_none()) throw py::type_error("target must be a numpy.ndarray, got None");
        const Arg t = target_arg(args, target_, N, K, "(N,) class indices, N = logits.shape[0]",
                                 "(N, K) probabilities, the shape of logits");
        const Arg w = args.array(weight_, in("weight").optional().shape({K}, "(K,), K = logits.shape[1]"));
        const Spec grad_spec = out("dlogits").shape({N, K}, "the shape of logits").may_be("logits");
        const Arg d = want_grad ? args.output(dlogits_, grad_spec) : Arg{};
        const auto red = static_cast<loss::Reduction>(reduction);
        const Arg rows = red == loss::Reduction::none ? args.output(py::none(), out("rows").shape({N}, "(N,)")) : Arg{};
        args.check_overlap();
        const loss::CeOptions o{label_smoothing, chapter, red, ignore_index, grad_scale, skip_nonfinite};
        const loss::Indices idx = indices(t);
        loss::Result r;
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          const T* soft = idx.data ? nullptr : t.as<T>();
          GilRelease nogil(N * K);
          r = loss::softmax_cross_entropy<T>(d.as<T>(), rows.as<T>(), z.as<T>(), idx, soft, w.as<T>(), o, N, K);
        });
        return result(r, rows, d);
      },
      py::arg("logits"), py::arg("target"), py::arg("weight"), py::arg("dlogits"), py::arg("want_grad"),
      py::arg("label_smoothing"), py::arg("chapter"), py::arg("reduction"), py::arg("ignore_index"),
      py::arg("grad_scale"), py::arg("skip_nonfinite"),
      "Softmax cross-entropy of logits (N, K) against class indices (N,) or probabilities (N, K); "
      "reduction 0 none, 1 mean, 2 sum. Returns (loss or row losses, dlogits or None, non-finite rows, first).");

  m.def(
      "distillation_loss",
      [](py::handle student_, py::handle teacher_, py::handle target_, py::handle dstudent_, bool want_grad,
         double temperature, double alpha, double label_smoothing, bool chapter, int reduction, bool skip_nonfinite) {
        Args args;
        const Arg s = args.array(student_, in("student_logits").ndim(2, "(N, K)"));
        const int64_t N = s.dim(0), K = s.dim(1);
        const Arg t = args.array(teacher_, in("teacher_logits").shape(s.shape(), "the shape of student_logits"));
        const Arg y = target_arg(args, target_, N, K, "(N,) class indices, N = student_logits.shape[0]", nullptr);
        const Spec grad_spec = out("dstudent").shape({N, K}, "the shape of student_logits").may_be("student_logits");
        const Arg d = want_grad ? args.output(dstudent_, grad_spec) : Arg{};
        const auto red = static_cast<loss::Reduction>(reduction);
        const Arg rows = red == loss::Reduction::none ? args.output(py::none(), out("rows").shape({N}, "(N,)")) : Arg{};
        args.check_overlap();
        const loss::KdOptions o{temperature, alpha, label_smoothing, chapter, red, skip_nonfinite};
        const loss::Indices idx = indices(y);
        loss::Result r;
        with_dtype(args.dtype(), [&](auto tag) {
          using T = decltype(tag);
          GilRelease nogil(N * K);
          r = loss::distillation<T>(d.as<T>(), rows.as<T>(), s.as<T>(), t.as<T>(), idx, o, N, K);
        });
        return result(r, rows, d);
      },
      py::arg("student_logits"), py::arg("teacher_logits"), py::arg("target"), py::arg("dstudent"),
      py::arg("want_grad"), py::arg("temperature"), py::arg("alpha"), py::arg("label_smoothing"), py::arg("chapter"),
      py::arg("reduction"), py::arg("skip_nonfinite"),
      "Distillation loss α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, target) of (N, K) logits; "
      "reduction 0 none, 1 batchmean, 2 sum. Returns (loss or row losses, dstudent or None, non-finite rows, first).");
}

}  // namespace nndl::bind
