// Build facts, SIMD target choice and the OpenMP thread count.
#include <omp.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "bindings/register.hpp"
#include "cache.hpp"
#include "parallel.hpp"
#include "simd/dispatch.hpp"

namespace nndl::bind {
namespace py = pybind11;

void register_runtime(py::module_& m) {
  init_threads();
  m.def("build_info", [] {
    py::list available;
    for (Target t : available_targets()) available.append(target_name(t));
    py::dict d;
    d["compiler"] = NNDL_COMPILER;
    d["openmp"] = _OPENMP;  // yyyymm of the OpenMP spec the compiler implements
    d["compiled_targets"] = py::str(NNDL_COMPILED_TARGETS).attr("split")(",");
    d["available_targets"] = available;
    d["selected_target"] = target_name(selected_target());
    d["num_threads"] = num_threads();
    d["thread_limit"] = thread_limit();
    d["num_procs"] = omp_get_num_procs();
    d["last_level_cache_bytes"] = last_level_cache_bytes();
    return d;
  });
  m.def("available_simd_targets", [] {
    std::vector<std::string> out;
    for (Target t : available_targets()) out.emplace_back(target_name(t));
    return out;
  });
  m.def("get_simd_target", [] { return std::string(target_name(selected_target())); });
  m.def("set_simd_target", [](const std::string& name) {
    try {
      set_target(name);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  });
  m.def(
      "set_num_threads",
      [](int n) {
        if (n > 1 && forked_after_threads())
          throw std::runtime_error(
              "set_num_threads(n > 1) in a process forked after nndl_fast ran threads: libgomp's worker "
              "threads do not survive fork, and a parallel kernel would wait for them forever; start "
              "workers with the 'spawn' or 'forkserver' method to use threads in them");
        set_num_threads(n);  // range checked in nndl_fast/_runtime.py
      },
      py::arg("n"));
  m.def("get_num_threads", &num_threads, "Threads the next kernel started from this thread uses.");
  m.def("last_level_cache_bytes", &last_level_cache_bytes);
  m.def("get_stream_threshold", &stream_threshold_bytes,
        "Outputs larger than this many bytes are written with streaming stores (norm kernels).");
  m.def(
      "set_stream_threshold",
      [](int64_t bytes) {
        if (bytes < -1) throw py::value_error("bytes must be >= 0, or -1 for the cache size");
        set_stream_threshold_bytes(bytes);
      },
      py::arg("bytes"), "Test hook: -1 restores the default (the last-level cache size).");
}

}  // namespace nndl::bind
