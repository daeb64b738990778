// Parity runner for golden family "preproc" (shared/golden/gen/gen_preproc.py: the official MoH-ViT eval transform,
// datasets.build_transform(is_train=False), applied to PIL default_loader images). Everything is rebuilt from the
// file itself: the source pixels (in.image_u8), input_size (and crop_pct when recorded) from the config.
#include <filesystem>

#include "common/error.h"
#include "common/image/image_io.h"
#include "parity/parity.h"
#include "common/image/preprocess.h"

namespace moh {
namespace {

// uint8 intermediates must match exactly once Pillow's resampler is reproduced.
constexpr Tolerance kExact{0.0, 0.0};

void add_exact(std::vector<ParityCheck>& checks, const GoldenFile& g, const std::string& name,
               const torch::Tensor& ours) {
  if (g.has(name)) checks.push_back({name, ours, g.get(name), kExact});
}

// Config value [a, b] as an int64 tensor, so that recorded sizes/offsets are compared like any other output.
void add_config_pair(std::vector<ParityCheck>& checks, const nlohmann::json& cfg, const std::string& key, int a,
                     int b) {
  if (!cfg.contains(key) || !cfg[key].is_array() || cfg[key].size() != 2) return;
  auto ref = torch::tensor({cfg[key][0].get<int64_t>(), cfg[key][1].get<int64_t>()}, torch::kInt64);
  checks.push_back({"config." + key, torch::tensor({int64_t{a}, int64_t{b}}, torch::kInt64), ref, kExact});
}

}  // namespace

std::vector<ParityCheck> run_preproc_parity(const GoldenFile& g) {
  const auto& cfg = g.config();
  MOH_CHECK(cfg.contains("input_size") && cfg["input_size"].is_number_integer(), "reference file '", g.path(),
            "': config has no integer 'input_size'; regenerate it with shared/golden/gen/gen_preproc.py");
  MOH_CHECK(g.has("in.image_u8"), "reference file '", g.path(), "' has no source image 'in.image_u8'");
  const int input_size = cfg["input_size"].get<int>();
  const double crop_pct = cfg.contains("crop_pct") && cfg["crop_pct"].is_number() ? cfg["crop_pct"].get<double>()
                                                                                  : kVitCropPct;
  // [H,W,C] with C = 1 (L), 3 (RGB) or 4 (RGBA) -> RGB the way PIL's convert('RGB') does it.
  const ImageU8 rgb = image_from_hwc_tensor(g.get("in.image_u8"));
  const EvalTransformSteps s = vit_eval_transform_steps(rgb, input_size, crop_pct);

  std::vector<ParityCheck> checks;
  add_config_pair(checks, cfg, "resized_size_wh", s.plan.resized_w, s.plan.resized_h);
  if (s.plan.crop) add_config_pair(checks, cfg, "crop_top_left", s.plan.crop_top, s.plan.crop_left);
  add_exact(checks, g, "mid.rgb_u8", image_to_hwc_tensor(rgb));
  add_exact(checks, g, "mid.resized_u8", image_to_hwc_tensor(s.resized));
  add_exact(checks, g, "mid.cropped_u8", image_to_hwc_tensor(s.cropped));
  if (g.has("out.tensor")) {
    // README 4.6: the float part matches to <= 1e-6 given identical uint8 input.
    const Tolerance t{g.tolerance_number("out.tensor_atol_if_u8_exact", 1e-6), 0.0};
    checks.push_back({"out.tensor", s.tensor, g.get("out.tensor"), t});
  }

  // The lossless source PNG next to the file (preproc_src/<name>.png), when present, must decode to the same RGB
  // pixels with this build's default decoder.
  if (cfg.contains("image") && cfg["image"].is_object() && cfg["image"].contains("name")) {
    const auto png = std::filesystem::path(g.path()).parent_path() / "preproc_src" /
                     (cfg["image"]["name"].get<std::string>() + ".png");
    if (std::filesystem::exists(png))
      checks.push_back({"decode(" + png.filename().string() + ")", image_to_hwc_tensor(decode_image_file(png.string())),
                        image_to_hwc_tensor(rgb), kExact});
  }
  return checks;
}

}  // namespace moh
