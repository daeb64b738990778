// [attention] MoH-ViT attention modules (vit/attention.h) against every vit_attn_* golden written by the official
// MoH-ViT/attention.py and attention_native.py, plus the CPB tables and window buffers they depend on.
#include <torch/torch.h>

#include "common/golden.h"
#include "tests/catch_compat.h"
#include "tests/parity_assert.h"
#include "tests/test_support.h"
#include "vit/attention.h"
#include "vit/parity.h"

using moh::test::require_checks_pass;

TEST_CASE("MoH-ViT attention matches every vit_attn golden", "[attention]") {
  const auto files = moh::test::data_glob("golden/vit_attn_*.safetensors");
  REQUIRE(!files.empty());
  const auto runner = moh::vit::parity_runners().at("vit_attn");
  torch::NoGradGuard no_grad;
  for (const auto& f : files) {
    moh::GoldenFile g(f);
    REQUIRE(g.family() == "vit_attn");
    const auto checks = runner(g);
    // Each file must at least compare the output, the gates and the position tables we rebuilt ourselves.
    std::set<std::string> names;
    for (auto& c : checks) names.insert(c.name);
    for (const char* must : {"out.y", "mid.gates", "in.relative_pos_index", "in.relative_coords_table",
                             "buf.seq_length_scale"})
      CHECK(names.count(must) == 1);
    if (g.config().at("routed_head").get<int>() > 0) CHECK(names.count("mid.router_topk_indices") == 1);
    require_checks_pass(checks, f);
  }
}

TEST_CASE("Aggregated attention window gather puts slot a*ws+b at pixel (i+a-p, j+b-p)", "[attention]") {
  // Tokens carry their own flat index, so every gathered slot says where it came from.
  const int64_t H = 4, W = 5, ws = 3, N = H * W;
  auto t = torch::arange(1, N + 1, torch::kFloat32).view({1, N, 1, 1});  // [B=1, N, h=1, d=1]
  auto win = moh::vit::local_windows(t, H, W, ws);                       // [1, 1, N, 1, 9]
  auto mask = moh::vit::local_window_padding_mask(H, W, ws);             // [N, 9]
  REQUIRE(win.sizes() == torch::IntArrayRef({1, 1, N, 1, ws * ws}));
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t a = 0; a < ws; ++a)
        for (int64_t b = 0; b < ws; ++b) {
          const int64_t r = i + a - 1, c = j + b - 1;
          const bool inside = r >= 0 && r < H && c >= 0 && c < W;
          const float got = win[0][0][i * W + j][0][a * ws + b].item<float>();
          CHECK(got == (inside ? float(r * W + c + 1) : 0.f));
          CHECK(mask[i * W + j][a * ws + b].item<bool>() == !inside);
        }
}
