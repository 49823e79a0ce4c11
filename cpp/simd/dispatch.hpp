// Run-time choice of the SIMD target.
//
// Every file listed in NNDL_KERNEL_SOURCES is compiled once per target with that
// target's flags and -DNNDL_TARGET=<name>, and wraps its code in
// `namespace nndl::NNDL_TARGET`. Declarations of those kernels are written once with
// NNDL_DECLARE_KERNELS, and NNDL_DISPATCH(fn)(args...) calls the selected copy.
//
// Rule for kernel files: use raw loops and <cmath> only, no std:: containers or other
// out-of-line templates. Such a template instantiated in two targets' files is one
// symbol to the linker, which keeps an arbitrary copy -- possibly the AVX-512 one,
// which would then run on a CPU without AVX-512.
#pragma once

#include <string>
#include <vector>

namespace nndl {

enum class Target : int { baseline = 0, avx2 = 1, avx512 = 2 };

const char* target_name(Target t);
// Targets both compiled into this module and supported by this CPU and OS, best last.
std::vector<Target> available_targets();
// The target kernels run with: the best available, unless NNDL_FAST_SIMD names
// another at import, or set_target() was called. Process-wide and atomic; while a TargetPin
// lives, its thread keeps the target it saw when the pin was made.
Target selected_target();
// Pins the calling thread's target for its lifetime, so that every kernel one call launches
// (batch norm's statistics, finalize and apply) runs on one target even if another thread
// calls set_target() meanwhile. Every binding makes one (bindings/args.hpp's Args holds it).
class TargetPin {
 public:
  TargetPin();
  ~TargetPin();
  TargetPin(const TargetPin&) = delete;
  TargetPin& operator=(const TargetPin&) = delete;

 private:
  int previous_;
};
// Throws std::invalid_argument for an unknown or unavailable name.
void set_target(const std::string& name);

}  // namespace nndl

#if defined(__x86_64__) || defined(_M_X64)
#define NNDL_HAVE_X86_TARGETS 1
#define NNDL_DECLARE_KERNELS(...) \
  namespace nndl::baseline {      \
  __VA_ARGS__                     \
  }                               \
  namespace nndl::avx2 {          \
  __VA_ARGS__                     \
  }                               \
  namespace nndl::avx512 {        \
  __VA_ARGS__                     \
  }
namespace nndl {
// One read of the target per launch, so a concurrent set_target() cannot mix two choices.
template <class F>
inline F pick(Target t, F avx512, F avx2, F baseline) {
  return t == Target::avx512 ? avx512 : t == Target::avx2 ? avx2 : baseline;
}
}  // namespace nndl
// NNDL_DISPATCH(adam_step)(args...) -> nndl::<selected>::adam_step(args...)
#define NNDL_DISPATCH(fn) \
  (::nndl::pick(::nndl::selected_target(), &::nndl::avx512::fn, &::nndl::avx2::fn, &::nndl::baseline::fn))
#else
#define NNDL_DECLARE_KERNELS(...) \
  namespace nndl::baseline {      \
  __VA_ARGS__                     \
  }
#define NNDL_DISPATCH(fn) (&::nndl::baseline::fn)
#endif
