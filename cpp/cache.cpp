#include "cache.hpp"

#include <fstream>
#include <string>

namespace nndl {
namespace {

int64_t read_llc_bytes() {
  int64_t best = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size");
    int level = 0;
    std::string size;
    if (!(level_file >> level) || !(size_file >> size) || size.empty()) continue;
    int64_t bytes = std::stoll(size);
    const char unit = size.back();
    if (unit == 'K') bytes <<= 10;
    if (unit == 'M') bytes <<= 20;
    if (level >= 2 && bytes > best) best = bytes;
  }
  return best > 0 ? best : int64_t{32} << 20;
}

int64_t g_stream_threshold = -1;  // -1: not set, use the cache size

}  // namespace

int64_t last_level_cache_bytes() {
  static const int64_t bytes = read_llc_bytes();
  return bytes;
}

int64_t stream_threshold_bytes() { return g_stream_threshold >= 0 ? g_stream_threshold : last_level_cache_bytes(); }

void set_stream_threshold_bytes(int64_t bytes) { g_stream_threshold = bytes; }

}  // namespace nndl
