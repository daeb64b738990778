// [routes] Routing statistics and pictures (common/routes/stats.h, common/image/heatmap.h, common/routes/report.h,
// vit/routes.h, dit/routes.h) and the moh-routes / moh-eval --routes-stats apps. Loads and maps are checked
// against gates computed with moh::moh_gates directly (and counts from its top-k indices), the skipping ratio
// against the configuration's (shared + top-k) / heads exactly. Fixtures: tests/data/routes/fmnist_t10k_*.png are
// the first three Fashion-MNIST test images (t10k index 0, 1, 2), written as 8-bit gray PNGs.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/dist/distributed.h"
#include "common/error.h"
#include "common/image/heatmap.h"
#include "common/datasets/idx.h"
#include "common/image/image_io.h"
#include "common/moh/gates.h"
#include "common/routes/report.h"
#include "common/routes/stats.h"
#include "dit/dit_layers.h"
#include "dit/model_source.h"
#include "dit/routes.h"
#include "tests/catch_compat.h"
#include "tests/test_support.h"
#include "vit/classifier.h"
#include "vit/model_source.h"
#include "vit/routes.h"

namespace fs = std::filesystem;

namespace {

using moh::test::repo_path;
std::string fixture(const std::string& name) { return moh::test::data_path("routes/" + name); }

struct RandomLayer {
  moh::MoHGateConfig cfg;
  moh::MoHGateWeights w;
  torch::Tensor u;  // [B, N, C]
};

RandomLayer random_layer(int64_t h, int64_t hs, int64_t hr, int64_t B, int64_t N, int64_t C, uint64_t seed) {
  torch::manual_seed(seed);
  RandomLayer r;
  r.cfg = {h, hs, hr, true};
  r.u = torch::randn({B, N, C});
  if (r.cfg.has_wg()) r.w.wg = torch::randn({h - hs, C});
  if (r.cfg.has_wg0()) r.w.wg_0 = torch::randn({2, C});
  if (r.cfg.has_wg1()) r.w.wg_1 = torch::randn({hs, C});
  return r;
}

// Loads counted from the router's top-k indices (not from the gates the statistics read).
std::vector<double> loads_from_topk(const torch::Tensor& topk, int64_t experts) {
  std::vector<double> count(size_t(experts), 0.0);
  auto a = topk.accessor<int64_t, 2>();  // [B*N, hr]
  for (int64_t t = 0; t < a.size(0); ++t)
    for (int64_t k = 0; k < a.size(1); ++k) count[size_t(a[t][k])] += 1;
  for (auto& c : count) c /= double(topk.size(0));
  return count;
}

double entropy01(const std::vector<double>& load) {
  double total = 0, h = 0;
  for (double v : load) total += v;
  for (double v : load)
    if (v > 0) h -= v / total * std::log(v / total);
  return h / std::log(double(load.size()));
}

int max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kInt32) - b.to(torch::kInt32)).abs().max().item<int>();
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    rows.push_back(f);
  }
  return rows;
}

}  // namespace

TEST_CASE("Loads, skipping ratio, entropy and maps follow the gates of moh_gates", "[routes]") {
  struct Case {
    int64_t h, hs, hr;
  };
  for (auto c : {Case{6, 2, 2}, Case{4, 0, 2}, Case{8, 4, 1}, Case{4, 1, 2}, Case{4, 2, 2}}) {
    INFO("h " << c.h << " hs " << c.hs << " hr " << c.hr);
    const int64_t B = 3, gh = 4, gw = 5, N = gh * gw;
    auto L = random_layer(c.h, c.hs, c.hr, B, N, 16, 7 + c.h + c.hs);
    moh::MoHGateDebug dbg;
    const auto gates = moh::moh_gates(L.u, L.cfg, L.w, &dbg);  // [B, N, h]
    moh::RouteLayerStats st({"layer", L.cfg, gh, gw}, true);
    st.add(gates.slice(0, 0, 1));
    st.add(gates.slice(0, 1, B));  // statistics add up over calls
    CHECK(st.images() == B);
    CHECK(st.tokens() == B * N);

    const auto expect = loads_from_topk(dbg.topk_indices, c.h - c.hs);
    const auto load = st.load();
    REQUIRE(load.size() == expect.size());
    double sum = 0;
    for (size_t j = 0; j < load.size(); ++j) {
      CHECK(load[j] == Approx(expect[j]).margin(1e-12));
      sum += load[j];
    }
    CHECK(sum == Approx(double(c.hr)));
    CHECK(st.load_entropy() == Approx(entropy01(expect)).margin(1e-12));
    // Exactly (shared + top-k) of the h heads are computed per token.
    CHECK(st.computed_matches_expected());
    CHECK(st.computed_fraction() == double(c.hs + c.hr) / double(c.h));
    CHECK(st.expected_fraction() == double(c.hs + c.hr) / double(c.h));
    for (int64_t head = 0; head < c.h; ++head) {
      const auto ref = gates.select(2, head).mean(0).view({gh, gw});  // [B, N] -> [gh, gw]
      CHECK(torch::allclose(st.mean_map(head), ref, 1e-6, 1e-6));
    }
    const auto j = st.to_json();
    CHECK(j.at("routed") == c.h - c.hs);
    CHECK(j.at("top_k") == c.hr);
    CHECK(j.at("routed_heads").size() == size_t(c.h - c.hs));
    CHECK(j.at("skipping_ratio_matches") == true);
  }
}

TEST_CASE("Load entropy: one head taking every token is 0; shared-only layers compute every pair", "[routes]") {
  auto L = random_layer(5, 2, 1, 2, 6, 8, 3);
  L.w.wg.zero_();
  L.w.wg[2].fill_(1.0);  // with positive inputs candidate 2 always wins
  L.u = L.u.abs();
  const auto gates = moh::moh_gates(L.u, L.cfg, L.w);
  moh::RouteLayerStats st({"one", L.cfg, 2, 3}, false);
  st.add(gates);
  CHECK(st.load() == std::vector<double>{0.0, 0.0, 1.0});
  CHECK(st.load_entropy() == 0.0);
  CHECK(st.computed_fraction() == 3.0 / 5.0);

  auto D = random_layer(4, 4, 0, 2, 6, 8, 4);
  moh::RouteLayerStats dense({"dense", D.cfg, 2, 3}, false);
  dense.add(moh::moh_gates(D.u, D.cfg, D.w));
  CHECK(dense.load().empty());
  CHECK(dense.computed_fraction() == 1.0);
  CHECK(dense.computed_matches_expected());
  CHECK_THROWS_AS(dense.add(torch::zeros({1, 5, 4})), moh::Error);  // 5 tokens for a 2x3 grid
}

TEST_CASE("Per-class loads add each image under its label", "[routes]") {
  auto L = random_layer(6, 2, 2, 4, 12, 8, 11);
  moh::MoHGateDebug dbg;
  const auto gates = moh::moh_gates(L.u, L.cfg, L.w, &dbg);
  moh::RouteClassStats cs({{"routed", L.cfg, 3, 4}, {"dense", {2, 2, 0, false}, 3, 4}}, 3);
  REQUIRE(cs.layers().size() == 1);  // layers without routed heads are not tracked
  cs.recorder({0, 2, 2, 0})("routed", gates);
  CHECK(cs.images(0, 0) == 2);
  CHECK(cs.images(0, 1) == 0);
  CHECK(cs.images(0, 2) == 2);
  // Class 2 = images 1 and 2: their top-k indices are rows [12, 36) of the [B*N, hr] table.
  const auto expect = loads_from_topk(dbg.topk_indices.slice(0, 12, 36), 4);
  for (int64_t j = 0; j < 4; ++j) CHECK(cs.load(0, 2, 2 + j) == Approx(expect[size_t(j)]).margin(1e-12));
  const auto dir = moh::test::temp_dir("routes_csv");
  cs.write_csv(dir + "/r.csv", [](int64_t c) { return c == 0 ? std::string("a,b") : "c" + std::to_string(c); });
  const auto rows = read_csv(dir + "/r.csv");
  REQUIRE(rows.size() == 1 + 2 * 4);  // header + (2 classes with images) x (4 routed heads)
  CHECK(rows[0].at(0) == "class_index");
  CHECK(rows[1].at(1) == "\"a");  // quoted name (split naively here)
}

TEST_CASE("Jet colours, nearest upsampling, overlay and contact sheet", "[routes]") {
  auto v = torch::tensor({0.0, 0.5, 1.0, 2.0}).view({1, 4});  // 2.0 is clamped to the top of the scale
  auto c = moh::colormap_jet(v, 1.0);                          // [1, 4, 3]
  // The jet definition: channel = clamp(1.5 - |4x - k|, 0, 1), k = 3 red, 2 green, 1 blue (level 128 = 0.5 -> 127.5).
  CHECK(c[0][0].to(torch::kInt32).equal(torch::tensor({0, 0, 128}, torch::kInt32)));
  CHECK(c[0][1][1].item<int>() == 255);
  CHECK(c[0][2].to(torch::kInt32).equal(torch::tensor({128, 0, 0}, torch::kInt32)));
  CHECK(c[0][3].equal(c[0][2]));

  auto grid = torch::arange(6, torch::kFloat32).view({2, 3});
  auto up = moh::upsample_nearest(grid, 4, 6);  // every cell becomes a 2x2 block
  CHECK(up[3][5].item<float>() == 5.0f);
  CHECK(up[1][2].item<float>() == 1.0f);
  CHECK(up[2][0].item<float>() == 3.0f);

  auto base = torch::full({4, 6, 3}, 200, torch::kUInt8);
  CHECK(moh::heatmap_overlay(base, grid, 5.0, 0.0).equal(base));
  CHECK(moh::heatmap_overlay(base, grid, 5.0, 1.0).equal(moh::colormap_jet(up, 5.0)));

  auto sheet = moh::contact_sheet({{base, base, base}, {base}}, 2);
  CHECK(sheet.sizes() == torch::IntArrayRef({2 * (4 + 2) + 2, 3 * (6 + 2) + 2, 3}));
  CHECK(sheet[0][0][0].item<int>() == 255);
  CHECK(sheet[2][2][0].item<int>() == 200);
  CHECK(sheet[2 + 6][2 + 8][0].item<int>() == 255);  // second row has one tile: the rest is background

  auto big = moh::display_image(torch::tensor({-1.0, 3.0, 1.0, 1.0}).view({1, 2, 2}), 3);  // min-max to 0..255
  CHECK(big.sizes() == torch::IntArrayRef({6, 6, 3}));
  CHECK(big[0][0][0].item<int>() == 0);
  CHECK(big[0][5][2].item<int>() == 255);
  CHECK(big[5][5][1].item<int>() == 128);
}

TEST_CASE("OpenCV and our own colours give the same pictures within a tolerance", "[routes]") {
  const auto backends = moh::heatmap_backends();
  if (backends.size() < 2) {
    CHECK_THROWS_AS(moh::colormap_jet(torch::zeros({2, 2}), 1.0, "opencv"), moh::Unsupported);
    return;
  }
  torch::manual_seed(5);
  auto ramp = torch::linspace(0, 1, 256).view({1, 256});
  const int d_ramp = max_abs_diff(moh::colormap_jet(ramp, 1.0, "own"), moh::colormap_jet(ramp, 1.0, "opencv"));
  INFO("jet, every level: max difference " << d_ramp);
  CHECK(d_ramp <= 2);
  auto base = torch::randint(0, 256, {24, 32, 3}, torch::kUInt8);
  auto vals = torch::rand({6, 8}) * 2.0;
  const int d = max_abs_diff(moh::heatmap_overlay(base, vals, 2.0, 0.55, "own"),
                             moh::heatmap_overlay(base, vals, 2.0, 0.55, "opencv"));
  INFO("overlay: max difference " << d);
  CHECK(d <= 2);
}

TEST_CASE("MoH-ViT routes: the recorded gates are those moh_gates gives on each block's input", "[routes]") {
  torch::manual_seed(1);
  const auto src = moh::vit::resolve_vit_source("", repo_path("models/moh-vit-fmnist.json"));  // random weights
  moh::vit::Classifier clf(src, torch::kCPU, torch::kFloat32);
  const auto img = moh::decode_image_file(fixture("fmnist_t10k_2_trouser.png"));
  const auto r = moh::vit::vit_routes(clf, img);
  REQUIRE(r.layers.size() == 6);  // depths 1, 2, 2, 1

  moh::vit::ViTRecord rec;
  torch::NoGradGuard ng;
  clf.model()->forward(r.input.unsqueeze(0), &rec);
  const auto& cfg = clf.config();
  size_t li = 0;
  for (int s = 0; s < 4; ++s)
    for (int64_t j = 0; j < cfg.depths[s]; ++j, ++li) {
      const auto name = "block" + std::to_string(s + 1) + "." + std::to_string(j);
      INFO(name);
      const auto& st = r.layers.at(li);
      REQUIRE(st.layer().name == name);
      auto blk = clf.model()->blocks[s]->ptr<moh::vit::BlockImpl>(size_t(j));
      const auto x = j == 0 ? rec.at("patch_embed" + std::to_string(s + 1))
                            : rec.at("block" + std::to_string(s + 1) + "." + std::to_string(j - 1));
      const auto& ao = blk->attn_full ? blk->attn_full->options() : blk->attn_agg->options();
      const auto& gl = blk->attn_full ? blk->attn_full->gate : blk->attn_agg->gate;
      moh::MoHGateDebug dbg;
      const auto gates = moh::moh_gates(blk->norm1(x), ao.gate_config(), gl.weights(), &dbg);  // [1, N, h]
      CHECK(st.layer().grid_h * st.layer().grid_w == gates.size(1));
      for (int64_t head = 0; head < ao.num_heads; ++head)
        CHECK(torch::allclose(st.mean_map(head).flatten(), gates[0].select(1, head), 1e-5, 1e-6));
      if (ao.routed_head > 0) {
        const auto expect = loads_from_topk(dbg.topk_indices, ao.num_heads - ao.shared_head);
        const auto load = st.load();
        for (size_t k = 0; k < load.size(); ++k) CHECK(load[k] == Approx(expect[k]).margin(1e-12));
      }
      CHECK(st.computed_matches_expected());
    }
}

TEST_CASE("MoH-DiT routes: bands of one sampling run, conditional pass, exact skipping ratio", "[routes]") {
  const auto src = moh::dit::resolve_dit_source("", repo_path("models/moh-dit-fmnist.json"));
  moh::dit::DiT model(src.config);
  moh::dit::init_random_weights(*model, 3);
  model->eval();
  moh::dit::GenerateParams p;
  p.labels = {1};
  p.steps = 6;
  p.cfg_scale = 2.0;
  p.progress = false;
  int64_t calls = 0;
  p.on_step = [&](int64_t) { ++calls; };
  const auto r = moh::dit::dit_routes(model, nullptr, p, torch::kCPU, 3);
  CHECK(calls == 6);  // the caller's on_step still runs
  REQUIRE(r.bands.size() == 3);
  CHECK(r.bands[0].name == "early");
  CHECK(r.bands[2].name == "late");
  CHECK(r.image_u8.sizes() == torch::IntArrayRef({28, 28, 3}));
  for (size_t b = 0; b < 3; ++b) {
    INFO(r.bands[b].name);
    CHECK(r.bands[b].first_step == int64_t(2 * b));
    CHECK(r.bands[b].last_step == int64_t(2 * b + 1));
    CHECK(r.bands[b].first_timestep > r.bands[b].last_timestep);  // noisiest first
    for (const auto& st : r.bands[b].layers) {
      CHECK(st.images() == 2);  // two steps, one (conditional) row each
      CHECK(st.computed_matches_expected());
      const auto& g = st.layer().gates;
      CHECK(st.computed_fraction() == (g.routed_head > 0 ? double(g.shared_head + g.routed_head) / g.num_heads : 1.0));
    }
  }
  CHECK(r.bands[2].last_timestep == 0);

  // The recorder hands over the whole batch (conditional rows first): the gates moh_gates gives on block 5's
  // input, rebuilt here from the block input and the adaLN modulation (official DiTBlock: shift_msa, scale_msa).
  torch::manual_seed(9);
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({500, 500});
  auto y = torch::tensor({int64_t(1), src.config.null_class()});
  torch::Tensor seen;
  moh::dit::DiTDebug dbg;
  {
    moh::ScopedGateRecorder<moh::dit::DiT> rec(model, [&](const std::string& name, const torch::Tensor& g) {
      if (name == "blocks.5") seen = g.clone();
    });
    model->forward(x, t, y, &dbg);
  }
  REQUIRE(seen.defined());
  REQUIRE(seen.size(0) == 2);
  auto blk = model->blocks->ptr<moh::dit::DiTBlockImpl>(5);
  torch::NoGradGuard ng;
  const auto h_in = dbg.tensors.at("blocks.4");  // [2, T, C]
  auto mod = blk->adaLN_modulation->ptr(1)->as<moh::dit::LinearImpl>()->forward(torch::silu(dbg.tensors.at("c")))
                 .chunk(6, 1);  // 6 x [2, C]
  auto u = torch::layer_norm(h_in, {h_in.size(-1)}, {}, {}, 1e-6) * (1 + mod[1].unsqueeze(1)) + mod[0].unsqueeze(1);
  moh::MoHGateWeights gw;
  gw = blk->attn->gate.weights();
  CHECK(torch::allclose(seen, moh::moh_gates(u, src.config.gate_config(5), gw), 1e-5, 1e-5));
}

TEST_CASE("moh-routes on the demo ViT: routes.json fields and picture sizes", "[routes]") {
  const auto dir = moh::test::temp_dir("routes_vit");
  std::string out;
  const int rc = moh::test::run_command(moh::test::bin_path("moh-routes") + " --weights " +
                                            repo_path("models/moh-vit-fmnist.safetensors") + " " +
                                            fixture("fmnist_t10k_2_trouser.png") + " --device cpu --out " + dir + "/r",
                                        &out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto j = moh::test::read_json(dir + "/r/routes.json");
  CHECK(j.at("kind") == "vit");
  CHECK(j.at("prediction").at(0).at("name") == "Trouser");
  const int64_t side = j.at("picture_size").at(0).get<int64_t>();
  CHECK(side == 64 * j.at("display_scale").get<int64_t>());
  CHECK(side >= 192);
  const auto& layers = j.at("layers");
  REQUIRE(layers.size() == 6);
  int maps = 0;
  for (const auto& l : layers) {
    INFO(l.at("name"));
    const int64_t h = l.at("heads"), hs = l.at("shared"), k = l.at("top_k");
    const double expected = k > 0 ? double(hs + k) / double(h) : 1.0;
    CHECK(l.at("skipping_ratio").get<double>() == expected);
    CHECK(l.at("skipping_ratio_matches") == true);
    const double e = l.at("load_entropy");
    CHECK((e >= 0.0 && e <= 1.0));
    double sum = 0;
    for (const auto& rh : l.at("routed_heads")) {
      const double load = rh.at("load");
      CHECK((load >= 0.0 && load <= 1.0));
      sum += load;
    }
    CHECK(sum == Approx(double(k)));
    if (k == 0) CHECK(!l.contains("maps"));
    if (!l.contains("maps")) continue;
    CHECK(l.at("maps").size() == size_t(h - hs));
    for (const auto& m : l.at("maps")) {
      const auto png = moh::decode_image_file(dir + "/r/" + m.at("file").get<std::string>());
      CHECK(png.width == side);
      CHECK(png.height == side);
      ++maps;
    }
  }
  CHECK(maps == 3 + 3 + 4 + 4 + 4);  // block2.0, block2.1 (3 routed heads), block3.0, block3.1, block4.0 (4)
  const auto sheet = moh::decode_image_file(dir + "/r/contact_sheet.png");
  CHECK(sheet.height == 5 * (side + 4) + 4);  // one row per routed layer
  CHECK(sheet.width == 5 * (side + 4) + 4);   // the picture + at most 4 routed heads
}

TEST_CASE("moh-routes on the demo DiT: three bands, generated image, exact skipping ratios", "[routes]") {
  const auto dir = moh::test::temp_dir("routes_dit");
  std::string out;
  const int rc = moh::test::run_command(moh::test::bin_path("moh-routes") + " -q --weights " +
                                            repo_path("models/moh-dit-fmnist.safetensors") +
                                            " --class Trouser --seed 3 --steps 12 --device cpu --out " + dir + "/r",
                                        &out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto j = moh::test::read_json(dir + "/r/routes.json");
  CHECK(j.at("kind") == "dit");
  CHECK(j.at("class").at("name") == "Trouser");
  const auto gen = moh::decode_image_file(dir + "/r/generated.png");
  CHECK(gen.width == 28);
  const int64_t side = j.at("picture_size").at(0);
  REQUIRE(j.at("bands").size() == 3);
  for (const auto& b : j.at("bands")) {
    INFO(b.at("name"));
    CHECK(b.at("layers").size() == 6);
    for (const auto& l : b.at("layers")) {
      CHECK(l.at("images") == 4);  // 12 steps / 3 bands
      CHECK(l.at("skipping_ratio_matches") == true);
      if (l.at("top_k") == 0) continue;
      CHECK(l.at("skipping_ratio").get<double>() == 0.75);  // (2 shared + top-1) / 4 heads
      for (const auto& m : l.at("maps")) {
        const auto png = moh::decode_image_file(dir + "/r/" + m.at("file").get<std::string>());
        CHECK(png.width == side);
      }
    }
  }
}

TEST_CASE("moh-eval --routes-stats: per class and layer, the mean load of each routed head", "[routes]") {
  const auto dir = moh::test::temp_dir("routes_eval");
  for (auto [cls, file] : {std::pair{"1", "fmnist_t10k_2_trouser.png"}, std::pair{"2", "fmnist_t10k_1_pullover.png"},
                           std::pair{"9", "fmnist_t10k_0_ankle-boot.png"}}) {
    fs::create_directories(dir + "/data/" + cls);
    fs::copy_file(fixture(file), dir + "/data/" + cls + "/" + file);
  }
  std::string out;
  const auto weights = repo_path("models/moh-vit-fmnist.safetensors");
  int rc = moh::test::run_command(moh::test::bin_path("moh-eval") + " -q --weights " + weights + " --data " + dir +
                                      "/data --device cpu --routes-stats " + dir + "/routes.csv",
                                  &out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto rows = read_csv(dir + "/routes.csv");
  REQUIRE(!rows.empty());
  CHECK(rows[0] == std::vector<std::string>{"class_index", "class_name", "layer", "head", "heads", "shared", "top_k",
                                            "images", "load"});
  // 3 classes x (2 layers x 3 + 2 x 4 + 1 x 4 routed heads).
  CHECK(rows.size() == 1 + 3 * (6 + 8 + 4));
  // One image per class: its loads are that image's loads, as moh-routes reports them.
  rc = moh::test::run_command(moh::test::bin_path("moh-routes") + " --weights " + weights + " " +
                                  fixture("fmnist_t10k_2_trouser.png") + " --device cpu --out " + dir + "/one",
                              &out);
  REQUIRE(rc == 0);
  const auto j = moh::test::read_json(dir + "/one/routes.json");
  int compared = 0;
  for (const auto& l : j.at("layers"))
    for (const auto& rh : l.at("routed_heads"))
      for (const auto& row : rows)
        if (row.at(0) == "1" && row.at(2) == l.at("name").get<std::string>() &&
            row.at(3) == std::to_string(rh.at("head").get<int64_t>())) {
          CHECK(row.at(7) == "1");
          CHECK(std::stod(row.at(8)) == Approx(rh.at("load").get<double>()).margin(1e-6));
          ++compared;
        }
  CHECK(compared == 18);
}

TEST_CASE("moh-eval --routes-stats: two ranks under torchrun give the one-process CSV", "[routes]") {
  if (!MOH_NEED(moh::dist::multi_process_supported(), "a build with Gloo (libgloo-dev)")) return;
  const std::string torchrun = repo_path("scripts/torchrun.sh");
  if (!MOH_NEED(moh::test::torchrun_available(), "torchrun (python3-torch; scripts/torchrun.sh --check)"))
    return;
  const std::string data = moh::default_fashion_mnist_dir();
  if (!MOH_NEED(!data.empty(), "dataset-fashion-mnist is not installed (scripts/setup-deps.sh installs it)")) return;
  const auto dir = moh::test::temp_dir("routes_dist");
  const std::string args = " -q --weights " + repo_path("models/moh-vit-fmnist.safetensors") + " --data " + data +
                           " --limit 60 --batch-size 16 --device cpu --threads 1 --routes-stats " + dir;
  std::string out1, out2;
  REQUIRE(moh::test::run_command(moh::test::bin_path("moh-eval") + args + "/one.csv 2>&1", &out1) == 0);
  const int rc = moh::test::run_command(torchrun + " --standalone --nproc_per_node 2 --no_python " +
                                            moh::test::bin_path("moh-eval") + args + "/two.csv 2>&1",
                                        &out2);
  INFO(out1 << "\n---- torchrun:\n" << out2);
  REQUIRE(rc == 0);
  const auto one = read_csv(dir + "/one.csv"), two = read_csv(dir + "/two.csv");
  CHECK(one.size() == 1 + 10 * 18);  // 60 evenly spaced test images cover all 10 classes
  CHECK(one == two);
}
