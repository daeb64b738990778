// splitmix64: the one 64-bit mixer behind every derived seed (training data order and per-step generators,
// FID-mode labels and per-sample noise). Header-only, no dependencies.
#pragma once
#include <cstdint>

namespace moh {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace moh
