// [attention] Host-side index logic of a sparse MoH attention launch without empty blocks (kernels/moh_work_list.h):
// the (batch, head, tile) work list built from per-(batch, head) selected-token counts, the tile offsets and the
// binary-search lookup a persistent kernel uses, and the dense-head classification. Counts come from seeded random
// MoH-style gates (routed heads nobody picks, shared heads everyone picks) computed with LibTorch, independently of the
// code under test; the expected items are enumerated from the gates' non-zero pattern directly.
#include <torch/torch.h>

#include <set>
#include <tuple>
#include <vector>

#include "kernels/moh_work_list.h"
#include "tests/catch_compat.h"

namespace {

// gates [B, N, h]: heads [0, hs) always on; routed heads on with probability p_on, head hs never (when routed exist).
torch::Tensor random_gates(int64_t B, int64_t N, int64_t h, int64_t hs, double p_on, uint64_t seed) {
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(seed);
  auto on = torch::rand({B, N, h}, gen) < p_on;  // [B, N, h]
  on.slice(2, 0, hs).fill_(true);
  if (h > hs) on.select(2, hs).fill_(false);  // a routed head no token selects
  return on.to(torch::kFloat32) * (torch::rand({B, N, h}, gen) + 0.5);
}

}  // namespace

TEST_CASE("Attention work list: no empty items, every selected tile exactly once, lookup matches the list",
          "[attention]") {
  using namespace moh::kernels;
  struct Case {
    int64_t B, N, h, hs, R;
    double p_on;
  };
  const std::vector<Case> cases = {{1, 1, 2, 1, 64, 0.5},   {2, 33, 6, 2, 64, 0.3},  {3, 256, 24, 16, 64, 0.375},
                                   {2, 130, 8, 0, 64, 0.1}, {1, 65, 4, 4, 64, 1.0},  {4, 49, 24, 8, 16, 0.75},
                                   {2, 1000, 5, 1, 128, 0.02}};
  uint64_t seed = 1;
  for (const auto& c : cases) {
    INFO("B=" << c.B << " N=" << c.N << " h=" << c.h << " hs=" << c.hs << " R=" << c.R << " p=" << c.p_on);
    auto gates = random_gates(c.B, c.N, c.h, c.hs, c.p_on, seed++);
    auto counts_t = (gates != 0).sum(1).to(torch::kInt32).contiguous();  // [B, h] selected tokens per (b, head)
    const int32_t* counts = counts_t.data_ptr<int32_t>();

    // Expected: for each (b, head), rank the selected tokens and group them R at a time.
    std::set<std::tuple<int, int, int>> expected;
    auto nz = (gates != 0);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t hd = 0; hd < c.h; ++hd) {
        int64_t rank = 0;
        for (int64_t n = 0; n < c.N; ++n)
          if (nz[b][n][hd].item<bool>()) expected.insert({int(b), int(hd), int(rank++ / c.R)});
      }

    std::vector<int64_t> offsets(c.B * c.h + 1);
    const int64_t total = attention_tile_offsets(counts, c.B, c.h, c.R, offsets.data());
    REQUIRE(total == static_cast<int64_t>(expected.size()));
    CHECK(total <= attention_work_capacity(c.B, c.h, c.N, c.R));
    CHECK(attention_work_list(counts, c.B, c.h, c.R, nullptr) == total);
    std::vector<AttnWorkItem> list(static_cast<size_t>(total));
    CHECK(attention_work_list(counts, c.B, c.h, c.R, list.data()) == total);

    std::set<std::tuple<int, int, int>> got;
    for (int64_t i = 0; i < total; ++i) {
      const auto& w = list[static_cast<size_t>(i)];
      got.insert({w.b, w.head, w.tile});
      CHECK(int64_t{w.tile} * c.R < counts[w.b * c.h + w.head]);  // no empty item
      const auto l = attention_work_item(offsets.data(), c.B, c.h, i);
      CHECK((l.b == w.b && l.head == w.head && l.tile == w.tile));
      if (i > 0) {  // (b, head, tile) order
        const auto& p = list[static_cast<size_t>(i - 1)];
        CHECK((std::make_tuple(p.b, p.head, p.tile) < std::make_tuple(w.b, w.head, w.tile)));
      }
    }
    CHECK((got == expected));

    std::vector<uint8_t> dense(static_cast<size_t>(c.h));
    const int64_t n_dense = dense_heads(counts, c.B, c.h, c.N, dense.data());
    int64_t expect_dense = 0;
    for (int64_t hd = 0; hd < c.h; ++hd) {
      const bool all = nz.select(2, hd).all().item<bool>();
      expect_dense += all;
      CHECK(bool(dense[static_cast<size_t>(hd)]) == all);
    }
    CHECK(n_dense == expect_dense);
    CHECK(n_dense >= c.hs);  // shared heads are always dense
  }
}

TEST_CASE("Attention work list: all heads empty gives no items", "[attention]") {
  using namespace moh::kernels;
  const std::vector<int32_t> counts(6, 0);
  std::vector<int64_t> offsets(7);
  CHECK(attention_tile_offsets(counts.data(), 2, 3, 64, offsets.data()) == 0);
  CHECK(attention_work_list(counts.data(), 2, 3, 64, nullptr) == 0);
  CHECK(tiles_for(0, 64) == 0);
  CHECK(tiles_for(64, 64) == 1);
  CHECK(tiles_for(65, 64) == 2);
}
