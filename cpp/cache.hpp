// The size of the last-level cache, for kernels that choose streaming stores above it.
#pragma once

#include <cstdint>

namespace nndl {

// Bytes of the L3 (or last-level) cache that CPU 0 shares, read once from sysfs (Linux).
// sysconf(_SC_LEVEL3_CACHE_SIZE) is not used: in a VM it reports the host's whole L3
// (384 MB on the machine these kernels were tuned on, whose guest sees 32 MB).
// Falls back to 32 MiB where sysfs does not say.
int64_t last_level_cache_bytes();

// Outputs larger than this are written with streaming stores (norm/stream_store.hpp).
// Defaults to last_level_cache_bytes(); settable so tests reach the streaming path with
// small arrays (nndl_fast._core.set_stream_threshold).
int64_t stream_threshold_bytes();
void set_stream_threshold_bytes(int64_t bytes);

}  // namespace nndl
