// nndl_fast._core: the compiled kernels. Private; the API is the Python package.
#include "bindings/register.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "nndl_fast compiled kernels (private: use the nndl_fast package)";
  nndl::bind::register_runtime(m);
  nndl::bind::register_bench(m);
  nndl::bind::register_optim(m);
  nndl::bind::register_clip(m);
  nndl::bind::register_dropout(m);
  nndl::bind::register_random(m);
  nndl::bind::register_batch_norm(m);
  nndl::bind::register_layer_norm(m);
  nndl::bind::register_weight_norm(m);
  nndl::bind::register_local_response_norm(m);
  nndl::bind::register_preprocessing(m);
  nndl::bind::register_search(m);
  nndl::bind::register_loss(m);
  nndl::bind::register_augment(m);
}
