// Host/device index logic for a sparse MoH attention launch without empty blocks (issue 16, deliverable 5): from the
// per-(batch, head) counts of selected tokens (what the router's token lists give, kernels/moh_router.h), the list of
// (batch, head, tile) work items that hold at least one selected query token. Plain C++ (no CUDA, no torch): tested
// on the CPU (tests/test_work_list.cpp); the same functions compile as __host__ __device__ under nvcc, so a persistent
// kernel can map "item i" to (b, head, tile) by a binary search over the tile offsets without a host sync.
// The official code (SkyworkAI/MoH MoH-DiT/models.py) computes every pair densely; this is ours. UNRUN on a GPU.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define MOH_HD __host__ __device__
#else
#define MOH_HD
#endif

namespace moh::kernels {

struct AttnWorkItem {
  int32_t b = 0, head = 0, tile = 0;  // query tile `tile` covers selected tokens [tile * R, tile * R + R) in rank order
};

// Tiles of R rows that `count` selected tokens need.
MOH_HD inline int64_t tiles_for(int64_t count, int64_t R) { return count <= 0 ? 0 : (count + R - 1) / R; }

// offsets[i] for i = b * h + head: exclusive prefix sum of tiles_for(counts[i], R); offsets[B * h] = total items.
// counts: [B, h] row-major. Returns the total.
MOH_HD inline int64_t attention_tile_offsets(const int32_t* counts, int64_t B, int64_t h, int64_t R, int64_t* offsets) {
  int64_t acc = 0;
  for (int64_t i = 0; i < B * h; ++i) {
    offsets[i] = acc;
    acc += tiles_for(counts[i], R);
  }
  offsets[B * h] = acc;
  return acc;
}

// Work item number `item` (0 <= item < offsets[B*h]) by binary search for the last (b, head) whose offset <= item.
// Pairs with no tiles are skipped automatically (equal consecutive offsets).
MOH_HD inline AttnWorkItem attention_work_item(const int64_t* offsets, int64_t B, int64_t h, int64_t item) {
  int64_t lo = 0, hi = B * h - 1;  // invariant: offsets[lo] <= item < offsets[hi + 1]
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (offsets[mid] <= item) lo = mid;
    else hi = mid - 1;
  }
  AttnWorkItem w;
  w.b = static_cast<int32_t>(lo / h);
  w.head = static_cast<int32_t>(lo % h);
  w.tile = static_cast<int32_t>(item - offsets[lo]);
  return w;
}

// The whole list in (b, head, tile) order, written to `out` (capacity >= offsets total; nullptr: count only).
// Returns the number of items. This is the host reference for a device-built list.
inline int64_t attention_work_list(const int32_t* counts, int64_t B, int64_t h, int64_t R, AttnWorkItem* out) {
  int64_t n = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hd = 0; hd < h; ++hd) {
      const int64_t t = tiles_for(counts[b * h + hd], R);
      for (int64_t k = 0; k < t; ++k, ++n)
        if (out) out[n] = AttnWorkItem{static_cast<int32_t>(b), static_cast<int32_t>(hd), static_cast<int32_t>(k)};
    }
  return n;
}

// Upper bound of the list length (every token selects every head): the grid of today's kernel, ceil(N/R) * h * B.
MOH_HD inline int64_t attention_work_capacity(int64_t B, int64_t h, int64_t N, int64_t R) {
  return B * h * tiles_for(N, R);
}

// Heads every token selected (count == N for all b): the dense path can take them (no gather, no zero duty).
// Writes dense[head] = 1/0 for head < h; returns how many are dense.
inline int64_t dense_heads(const int32_t* counts, int64_t B, int64_t h, int64_t N, uint8_t* dense) {
  int64_t n = 0;
  for (int64_t hd = 0; hd < h; ++hd) {
    bool all = N > 0;
    for (int64_t b = 0; b < B && all; ++b) all = counts[b * h + hd] == N;
    dense[hd] = all ? 1 : 0;
    n += all;
  }
  return n;
}

}  // namespace moh::kernels
