#pragma once

#include <pybind11/pybind11.h>

namespace nndl::bind {
void register_runtime(pybind11::module_& m);
void register_bench(pybind11::module_& m);
void register_optim(pybind11::module_& m);
void register_clip(pybind11::module_& m);
void register_dropout(pybind11::module_& m);
void register_random(pybind11::module_& m);
void register_batch_norm(pybind11::module_& m);
void register_layer_norm(pybind11::module_& m);
void register_weight_norm(pybind11::module_& m);
void register_local_response_norm(pybind11::module_& m);
void register_preprocessing(pybind11::module_& m);
void register_search(pybind11::module_& m);
void register_loss(pybind11::module_& m);
void register_augment(pybind11::module_& m);
}  // namespace nndl::bind
