#include "simd/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace nndl {
namespace {

bool cpu_supports(Target t) {
#if defined(NNDL_HAVE_X86_TARGETS) && (defined(__GNUC__) || defined(__clang__))
  // libgcc's checks include the OS's consent (XCR0) to save the wide registers.
  switch (t) {
    case Target::baseline:
      return true;
    case Target::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
    case Target::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  }
  return false;
#else
  return t == Target::baseline;
#endif
}

Target parse(const std::string& name) {
  for (Target t : {Target::baseline, Target::avx2, Target::avx512})
    if (name == target_name(t)) return t;
  throw std::invalid_argument("unknown SIMD target '" + name + "' (expected one of: baseline, avx2, avx512)");
}

Target best_target() {
  Target best = Target::baseline;
  for (Target t : available_targets()) best = t;
  if (const char* env = std::getenv("NNDL_FAST_SIMD"); env && *env) {
    // An unknown or unavailable name is ignored here (import must not fail);
    // nndl_fast/__init__.py re-applies it through set_target() to report the error.
    try {
      Target forced = parse(env);
      if (cpu_supports(forced)) best = forced;
    } catch (const std::invalid_argument&) {
    }
  }
  return best;
}

std::atomic<Target> g_selected{best_target()};
thread_local int t_pinned = -1;  // the calling thread's pinned target (TargetPin), or -1

}  // namespace

const char* target_name(Target t) {
  switch (t) {
    case Target::baseline:
      return "baseline";
    case Target::avx2:
      return "avx2";
    case Target::avx512:
      return "avx512";
  }
  return "?";
}

std::vector<Target> available_targets() {
  std::vector<Target> out;
#if defined(NNDL_HAVE_X86_TARGETS)
  for (Target t : {Target::baseline, Target::avx2, Target::avx512})
    if (cpu_supports(t)) out.push_back(t);
#else
  out.push_back(Target::baseline);
#endif
  return out;
}

Target selected_target() {
  const int pinned = t_pinned;
  return pinned >= 0 ? static_cast<Target>(pinned) : g_selected.load(std::memory_order_relaxed);
}

TargetPin::TargetPin() : previous_(t_pinned) { t_pinned = static_cast<int>(selected_target()); }
TargetPin::~TargetPin() { t_pinned = previous_; }

void set_target(const std::string& name) {
  Target t = parse(name);
  if (!cpu_supports(t)) throw std::invalid_argument("SIMD target '" + name + "' is not supported by this CPU");
  g_selected.store(t, std::memory_order_relaxed);
}

}  // namespace nndl
