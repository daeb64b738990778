// moh-bench dit: MoH-DiT forward, SD-VAE decode and end-to-end sampling throughput (random weights unless
// --weights), compared with the official PyTorch eager anchors measured on the same H200 (DESIGN.md: MoH-DiT-XL/2-90
// forward at batch 64, 256x256: 62.7 ms bf16 (36.7 ms under torch.compile); SD-VAE decode of 32 latents: 100 ms bf16).
// Cases (--only): "forward" (batch 2n: n images with CFG), "vae" (decode n latents), "sample" (n images: DDPM +
// CFG 1.5 + VAE decode, as sample_ddp.py). The model is MoH-DiT-XL/2-90 unless an --only entry names another
// preset or a JSON config (e.g. --only S/2-90: a quick CPU run). n = 32 on CUDA, 1 on the CPU
// (MOH_BENCH_DIT_IMAGES overrides); sampling steps 250 on CUDA, 10 on the CPU (MOH_BENCH_DIT_STEPS); the sample
// case runs min(--iters, MOH_BENCH_DIT_SAMPLE_ITERS = 1) timed pass(es) after the other cases warmed up.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "apps/bench/bench_common.h"
#include "apps/bench/bench_profile.h"
#include "common/io/atomic_file.h"
#include "common/runtime/device.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "dit/precision.h"
#include "dit/config.h"
#include "dit/dit_layers.h"
#include "dit/generate.h"
#include "dit/model.h"
#include "dit/vae.h"

namespace moh::bench {
namespace {

constexpr double kAnchorForwardMs = 62.7;          // official eager, XL/2-90, batch 64, 256^2, bf16 autocast
constexpr double kAnchorForwardCompiledMs = 36.7;  // same under torch.compile
constexpr double kAnchorVaeMs = 100.0;             // diffusers SD-VAE decode, 32 latents 32^2, bf16

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  MOH_CHECK(end && *end == '\0' && x >= 1, name, " must be a positive integer, got '", v, "'");
  return x;
}

}  // namespace

int bench_dit(const BenchOptions& o) {
  // --only holds case names and, optionally, one model (preset name or JSON file).
  std::string model_spec = "MoH-DiT-XL/2-90";
  std::vector<std::string> cases;
  for (const auto& s : o.only) {
    if (s == "forward" || s == "vae" || s == "sample") cases.push_back(s);
    else if (dit::is_dit_preset(s) || std::ifstream(s).good()) model_spec = s;
    else throw Error("--only '" + s + "' is neither a dit case (forward, vae, sample) nor a DiT preset (MoH-DiT or dense DiT) / JSON");
  }
  if (cases.empty()) cases = {"forward", "vae", "sample"};
  auto want = [&](const char* c) { return std::find(cases.begin(), cases.end(), c) != cases.end(); };

  const auto device = parse_device(o.device);
  const auto precision = parse_precision(o.dtype, device);  // auto: mixed on CUDA (the apps' default), fp32 on CPU
  const auto dtype = stream_dtype(precision);               // inputs
  const bool cuda = device.is_cuda();
  const int64_t n = env_int("MOH_BENCH_DIT_IMAGES", cuda ? 32 : 1);
  const int64_t steps = env_int("MOH_BENCH_DIT_STEPS", cuda ? 250 : 10);
  const int sample_iters = static_cast<int>(std::min<int64_t>(std::max(1, o.iters), env_int("MOH_BENCH_DIT_SAMPLE_ITERS", 1)));
  const auto cfg = dit::resolve_dit_config(model_spec);
  const std::string where = precision_to_string(precision) + " on " + device_to_string(device);
  const bool anchor_model = cfg.name == dit::dit_preset("MoH-DiT-XL/2-90").name && cfg.input_size == 32;

  std::optional<Against> against;
  if (!o.against.empty()) against.emplace(o.against);
  torch::NoGradGuard no_grad;
  dit::DiT model = dit::build_dit(cfg, o.weights, torch::kCPU, torch::kFloat32);
  if (o.weights.empty()) dit::init_random_weights(*model, 0);
  dit::apply_dit_precision(model, device, precision);

  std::optional<dit::Vae> vae;
  if (want("vae") || want("sample")) {
    MOH_CHECK(cfg.in_channels == 4, "the vae/sample cases need a 4-channel latent model; ", cfg.name, " has ",
              cfg.in_channels, " (use --only forward)");
    torch::manual_seed(0);  // default module init (random VAE weights)
    vae = dit::Vae(dit::VaeConfig::preset("sd-vae-ft-ema"));
    (*vae)->to(device, gemm_dtype(precision));
    (*vae)->eval();
  }

  nlohmann::json results = nlohmann::json::array();
  auto opts = torch::TensorOptions().device(device);
  char extra[320];

  if (want("forward")) {
    const int64_t b = 2 * n;  // n conditional + n null-class rows, as forward_with_cfg runs them
    torch::manual_seed(o.input_seed);  // the same input every run; bench-official.py draws the same (same torch)
    auto x = torch::randn({b, cfg.in_channels, cfg.input_size, cfg.input_size}, opts.dtype(dtype));
    auto t = torch::randint(0, 1000, {b}, opts.dtype(torch::kInt64));
    auto y = torch::cat({torch::randint(0, cfg.num_classes, {n}, opts.dtype(torch::kInt64)),
                         torch::full({n}, cfg.null_class(), opts.dtype(torch::kInt64))});
    const auto tm = time_it([&] { model->forward(x, t, y); }, device, o.warmup, o.iters);
    if (o.profile) {
      OpProfiler prof;
      const int runs = std::max(1, std::min(o.iters, 3));
      for (int i = 0; i < runs; ++i) model->forward(x, t, y);
      prof.print(20, runs, "dit forward " + cfg.name);
    }
    if (cuda && anchor_model && b == 64)
      std::snprintf(extra, sizeof extra, "batch %lld %s (official eager anchor %.1f ms: x%.2f; torch.compile %.1f ms: x%.2f)",
                    (long long)b, where.c_str(), kAnchorForwardMs, kAnchorForwardMs / tm.median_ms,
                    kAnchorForwardCompiledMs, kAnchorForwardCompiledMs / tm.median_ms);
    else
      std::snprintf(extra, sizeof extra, "batch %lld %s (anchors: XL/2-90 batch 64 on the H200)", (long long)b,
                    where.c_str());
    report("dit forward " + cfg.name, tm, extra);
    results.push_back({{"name", "forward"}, {"model", cfg.name}, {"batch", b}, {"median_ms", tm.median_ms},
                       {"min_ms", tm.min_ms}, {"max_ms", tm.max_ms}, {"anchor_ms", kAnchorForwardMs},
                       {"anchor_compiled_ms", kAnchorForwardCompiledMs}});
    if (!cuda) {
      const auto rate = gemm_rate([&] { model->forward(x, t, y); }, tm, gemm_dtype(precision));
      std::printf("  %s\n", gemm_rate_text(rate).c_str());
      results.back().update(gemm_rate_json(rate));
      if (precision != Precision::kFp32) {  // error against the same weights in fp32, on the same input
        dit::DiT ref_model = dit::build_dit(cfg, o.weights, torch::kCPU, torch::kFloat32);
        if (o.weights.empty()) dit::init_random_weights(*ref_model, 0);
        report_rel_err(rel_err(model->forward(x, t, y), ref_model->forward(x.to(torch::kFloat32), t, y)), results.back());
      }
      std::fflush(stdout);
    }
    if (against) {
      const auto* off = against->official_case("dit", "model", cfg.name, b);
      MOH_CHECK(off, "--against: '", o.against, "' has no dit forward of ", cfg.name, " (run bench-official.py --dit ",
                cfg.name, ")");
      const double off_ms = off->at("median_ms").template get<double>();
      std::printf("  vs official (%s): %s\n", o.against.c_str(), against_text(off_ms, tm.median_ms, "ms", false).c_str());
      std::fflush(stdout);
      results.back().update({{"official_ms", off_ms}, {"ours_over_official", off_ms / tm.median_ms}});
    }
  }

  if (want("vae")) {
    auto z = torch::randn({n, 4, cfg.input_size, cfg.input_size}, opts.dtype(gemm_dtype(precision)));
    const auto tm = time_it([&] { (*vae)->decode(z); }, device, o.warmup, o.iters);
    const int64_t side = cfg.input_size * (*vae)->config().downscale();
    if (cuda && n == 32 && cfg.input_size == 32)
      std::snprintf(extra, sizeof extra, "%lld latents -> %lldx%lld %s (diffusers anchor %.0f ms: x%.2f)", (long long)n,
                    (long long)side, (long long)side, where.c_str(), kAnchorVaeMs, kAnchorVaeMs / tm.median_ms);
    else
      std::snprintf(extra, sizeof extra, "%lld latents -> %lldx%lld %s", (long long)n, (long long)side, (long long)side,
                    where.c_str());
    report("sd-vae decode", tm, extra);
    results.push_back({{"name", "vae"}, {"latents", n}, {"image_size", side}, {"median_ms", tm.median_ms},
                       {"min_ms", tm.min_ms}, {"max_ms", tm.max_ms}, {"anchor_ms", kAnchorVaeMs}});
  }

  if (want("sample")) {
    dit::GenerateParams p;
    for (int64_t i = 0; i < n; ++i) p.labels.push_back((i * 97) % cfg.num_classes);
    p.steps = steps;
    p.sampler = "ddpm";
    p.cfg_scale = 1.5;  // sample_ddp.py default: guided, so the model sees 2n rows per step
    p.batch_size = n;
    p.progress = false;
    dit::Vae* v = &*vae;
    const auto tm = time_it([&] { dit::generate_images(model, v, p, device, [](const dit::GeneratedBatch&) {}); },
                            device, 0, sample_iters);
    const double img_s = n / (tm.median_ms / 1000.0);
    // The anchor pipeline: 250 forwards at 62.7 ms + one 100 ms decode per 32 images.
    const double anchor_img_s = 32.0 / ((250 * kAnchorForwardMs + kAnchorVaeMs) / 1000.0);
    if (cuda && anchor_model && n == 32 && steps == 250)
      std::snprintf(extra, sizeof extra, "%lld images, %lld DDPM steps + decode %s: %.2f img/s (anchor-derived %.2f "
                    "img/s: x%.2f)", (long long)n, (long long)steps, where.c_str(), img_s, anchor_img_s,
                    img_s / anchor_img_s);
    else
      std::snprintf(extra, sizeof extra, "%lld images, %lld DDPM steps + decode %s: %.3f img/s", (long long)n,
                    (long long)steps, where.c_str(), img_s);
    report("dit sample " + cfg.name, tm, extra);
    results.push_back({{"name", "sample"}, {"model", cfg.name}, {"images", n}, {"steps", steps},
                       {"median_ms", tm.median_ms}, {"images_per_second", img_s},
                       {"anchor_images_per_second", anchor_img_s}});
  }

  if (!o.json_out.empty())
    write_file_atomic(o.json_out, nlohmann::json{{"dit", results}, {"device", device_to_string(device)},
                                                 {"dtype", precision_to_string(precision)}}.dump(2) + "\n");
  return 0;
}

}  // namespace moh::bench
