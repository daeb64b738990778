// moh-bench vit: MoH-ViT-S-80 and MoH-ViT-B-75 classification throughput at 224x224 (random weights unless
// --weights), compared with the official PyTorch eager anchors measured on the same H200 (DESIGN.md: 492 / 369
// img/s at batch 256, bf16 autocast). Batch 256 on CUDA; on the CPU a small batch (override: MOH_BENCH_VIT_BATCH).
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "apps/bench/bench_common.h"
#include "apps/bench/bench_profile.h"
#include "common/io/atomic_file.h"
#include "common/runtime/device.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "vit/precision.h"
#include "vit/attention.h"
#include "vit/config.h"
#include "vit/cpb.h"
#include "vit/model.h"

namespace moh::bench {
namespace {

struct VitCase {
  const char* name;    // --only name
  const char* preset;  // vit preset
  double anchor_img_s; // official PyTorch eager, H200, batch 256, bf16 autocast; 0 = none
  bool on_request;     // run only when --only names it (the dense TransNeXt baselines)
};

bool selected(const BenchOptions& o, const VitCase& c) {
  if (o.only.empty()) return !c.on_request;
  for (const auto& s : o.only)
    if (s == c.name || s == c.preset || (vit::is_vit_preset(s) && vit::vit_preset(s).name == vit::vit_preset(c.preset).name))
      return true;
  return false;
}

}  // namespace

// --only agg: one AggregatedAttention layer of each MoH-ViT-S-80 stage (random weights), the fused CPU kernel against
// the LibTorch unfold reference in the same run.
int bench_vit_aggregated(const BenchOptions& o, int64_t batch) {
  torch::NoGradGuard no_grad;
  const auto cfg = vit::vit_preset("moh-vit-s-80");
  for (int s = 0; s < 3; ++s) {
    vit::AttentionOptions a;
    a.dim = cfg.embed_dims[s];
    a.num_heads = cfg.num_heads[s];
    const auto res = cfg.resolution(s), key = cfg.key_size(s);
    a.input_resolution = {res, res};
    a.shared_head = cfg.shared_head[s];
    a.routed_head = cfg.routed_head[s];
    a.sr_ratio = cfg.sr_ratios[s];
    a.window_size = cfg.window_size[s];
    a.pool_size = {key, key};
    vit::AggregatedAttention m(a);
    m->eval();
    const auto tables = vit::relative_position_cpb({res, res}, {key, key}, {res, res});
    auto x = torch::randn({batch, res * res, a.dim});
    const auto fused = time_it([&] { m->forward_fused_cpu(x, res, res, tables); }, torch::kCPU, o.warmup, o.iters);
    const auto ref = time_it([&] { m->forward_reference(x, res, res, tables); }, torch::kCPU, o.warmup, o.iters);
    char extra[160];
    std::snprintf(extra, sizeof extra, "batch %lld, %lldx%lld tokens, %lld heads: unfold reference %.2f ms, x%.2f",
                  (long long)batch, (long long)res, (long long)res, (long long)a.num_heads, ref.median_ms,
                  ref.median_ms / fused.median_ms);
    report("vit aggregated attention stage " + std::to_string(s + 1) + " (fused)", fused, extra);
    if (o.profile) {
      OpProfiler prof;
      for (int i = 0; i < o.iters; ++i) m->forward_fused_cpu(x, res, res, tables);
      prof.print(12, o.iters, "fused aggregated attention stage " + std::to_string(s + 1));
    }
  }
  return 0;
}

int bench_vit(const BenchOptions& o) {
  const VitCase cases[] = {{"s80", "moh-vit-s-80", 492.0, false},       {"b75", "moh-vit-b-75", 369.0, false},
                           {"tnx-micro", "transnext_micro", 0.0, true}, {"tnx-tiny", "transnext_tiny", 0.0, true},
                           {"tnx-small", "transnext_small", 0.0, true}, {"tnx-base", "transnext_base", 0.0, true}};
  const auto device = parse_device(o.device);
  const auto precision = parse_precision(o.dtype, device);  // auto: mixed on CUDA (the apps' default), fp32 on CPU
  const auto dtype = stream_dtype(precision);               // inputs
  int64_t batch = device.is_cuda() ? 256 : 4;
  if (const char* env = std::getenv("MOH_BENCH_VIT_BATCH")) batch = std::atoll(env);
  MOH_CHECK(batch >= 1, "MOH_BENCH_VIT_BATCH must be a positive integer");
  if (o.only.size() == 1 && o.only[0] == "agg") return bench_vit_aggregated(o, batch);
  int n_selected = 0;
  for (const auto& c : cases) n_selected += selected(o, c);
  MOH_CHECK(n_selected > 0, "--only matches none of the vit cases (s80, b75, agg; dense TransNeXt: tnx-micro, tnx-tiny, "
            "tnx-small, tnx-base)");
  MOH_CHECK(o.weights.empty() || n_selected == 1, "--weights belongs to one model: add --only s80 or --only b75");

  std::optional<Against> against;
  if (!o.against.empty()) against.emplace(o.against);
  torch::NoGradGuard no_grad;
  nlohmann::json results = nlohmann::json::array();
  for (const auto& c : cases) {
    if (!selected(o, c)) continue;
    auto cfg = vit::vit_preset(c.preset);
    torch::manual_seed(0);  // random weights: the same for the fp32 reference below
    auto model = vit::build_vit(cfg, o.weights, torch::kCPU, torch::kFloat32);
    vit::apply_vit_precision(model, device, precision);
    torch::manual_seed(o.input_seed);  // the input: bench-official.py --input-seed draws the same (same torch)
    auto x = torch::randn({batch, 3, cfg.img_size, cfg.img_size}, torch::TensorOptions().device(device).dtype(dtype));
    const auto t = time_it([&] { model->forward(x); }, device, o.warmup, o.iters);
    if (o.profile) {
      OpProfiler prof;
      const int runs = std::max(1, std::min(o.iters, 3));
      for (int i = 0; i < runs; ++i) model->forward(x);
      prof.print(25, runs, std::string("vit ") + cfg.name);
    }
    const double img_s = batch / (t.median_ms / 1000.0);
    char extra[256];
    if (device.is_cuda() && c.anchor_img_s > 0)
      std::snprintf(extra, sizeof extra, "batch %lld %s: %.1f img/s (official eager anchor %.0f img/s: x%.2f)",
                    (long long)batch, precision_to_string(precision).c_str(), img_s, c.anchor_img_s, img_s / c.anchor_img_s);
    else
      std::snprintf(extra, sizeof extra, "batch %lld %s on %s: %.2f img/s (%s)", (long long)batch,
                    precision_to_string(precision).c_str(), device_to_string(device).c_str(), img_s,
                    c.anchor_img_s > 0 ? "anchors are GPU numbers" : "no official anchor");
    report(std::string("vit ") + cfg.name, t, extra);
    double official_img_s = 0;
    if (against) {
      const auto* off = against->official_case("vit", "name", c.name, batch);
      MOH_CHECK(off, "--against: '", o.against, "' has no vit case '", c.name, "' (run bench-official.py --vit ", c.name,
                ")");
      official_img_s = off->at("images_per_second").template get<double>();
      std::printf("  vs official (%s): %s\n", o.against.c_str(),
                  against_text(official_img_s, img_s, "img/s", true).c_str());
      std::fflush(stdout);
    }
    results.push_back({{"name", c.name}, {"model", cfg.name}, {"batch", batch}, {"device", device_to_string(device)},
                       {"dtype", precision_to_string(precision)}, {"median_ms", t.median_ms}, {"min_ms", t.min_ms},
                       {"max_ms", t.max_ms}, {"images_per_second", img_s},
                       {"anchor_images_per_second", c.anchor_img_s}});
    if (!device.is_cuda()) {
      const auto rate = gemm_rate([&] { model->forward(x); }, t, gemm_dtype(precision));
      std::printf("  %s\n", gemm_rate_text(rate).c_str());
      results.back().update(gemm_rate_json(rate));
      if (precision != Precision::kFp32) {  // error against the same weights in fp32, on the same input
        torch::manual_seed(0);
        auto ref_model = vit::build_vit(cfg, o.weights, torch::kCPU, torch::kFloat32);
        ref_model->eval();
        report_rel_err(rel_err(model->forward(x), ref_model->forward(x.to(torch::kFloat32))), results.back());
      }
      std::fflush(stdout);
    }
    if (against)
      results.back().update({{"official_images_per_second", official_img_s}, {"ours_over_official", img_s / official_img_s}});
  }
  if (!o.json_out.empty()) write_file_atomic(o.json_out, nlohmann::json{{"vit", results}}.dump(2) + "\n");
  return 0;
}

}  // namespace moh::bench
