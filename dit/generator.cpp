// moh::dit::Generator (dit/generator.h): opening DiT + VAE, class resolution, recorded sampler defaults, and the
// calls into the generation pipeline. Mirrors the setup half of MoH-DiT/sample.py and sample_ddp.py.
#include "dit/generator.h"

#include <algorithm>
#include <filesystem>

#include "common/runtime/device.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "dit/dit_layers.h"
#include "dit/precision.h"
#include "dit/generation_output.h"

namespace moh::dit {

const std::vector<int64_t> kSamplePyLabels = {207, 360, 387, 974, 88, 979, 417, 279};

namespace {

nlohmann::json file_facts(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return {{"path", path}, {"bytes", ec ? -1 : (int64_t)size}};
}

}  // namespace

std::vector<int64_t> resolve_classes(const DiTModelSource& m, const std::vector<std::string>& queries,
                                     bool all_when_empty) {
  const auto& cfg = m.config;
  std::vector<int64_t> ids;
  auto all = [&] {
    for (int64_t k = 0; k < cfg.num_classes; ++k) ids.push_back(k);
  };
  for (const auto& q : queries) {
    if (q == "all") all();
    else ids.push_back(resolve_dit_class(q, m));
  }
  if (!ids.empty()) return ids;
  if (all_when_empty) {
    all();  // sample_ddp.py: every class
    return ids;
  }
  MOH_CHECK(cfg.num_classes == 1000 && m.class_names.empty(), "no class given: model ", cfg.name, " has ",
            cfg.num_classes, " classes of its own; ask for at least one (or 'all')");
  return kSamplePyLabels;
}

DiTModelSource Generator::resolve(const GeneratorOptions& o) {
  MOH_CHECK(!o.weights.empty() || o.random_weights,
            "no DiT weights file given: the demo model models/moh-dit-fmnist.safetensors ships with the toolkit; "
            "official MoH-DiT checkpoints go with a model preset (.pt files load directly); random weights only "
            "for smoke tests");
  MOH_CHECK(o.weights.empty() || !o.random_weights, "a DiT weights file and random weights exclude each other");
  auto src = resolve_dit_source(o.weights, o.random_weights && o.model.empty() ? "MoH-DiT-XL/2-90" : o.model);
  return src;
}

Generator::Generator(const GeneratorOptions& o, const dist::Group* group) : Generator(o, resolve(o), group) {}

Generator::Generator(const GeneratorOptions& o, DiTModelSource source, const dist::Group* group)
    : o_(o),
      source_(std::move(source)),
      device_(group ? dist::rank_device(o.device, *group) : parse_device(o.device)),
      precision_(parse_precision(o.dtype, device_)),
      dtype_(gemm_dtype(precision_)) {
  MOH_CHECK(!o.vae.empty() || o.random_weights || source_.pixel_space, "no VAE weights given: model ",
            source_.config.name, " generates ", source_.config.in_channels, "-channel latents that the SD VAE decodes "
            "(e.g. sd-vae-ft-ema diffusion_pytorch_model.safetensors)");
  // Built (and loaded) in fp32 on the CPU, then placed and cast for the precision policy.
  model_ = build_dit(source_.config, o.random_weights ? "" : o.weights, torch::kCPU, torch::kFloat32);
  if (o.random_weights) init_random_weights(*model_, o.random_seed);
  apply_dit_precision(model_, device_, precision_);

  const auto fallback = VaeConfig::parse(o.vae_config);
  vae_desc_ = "none (pixel-space model)";
  if (!o.vae.empty()) {
    vae_ = load_vae(o.vae, fallback);
    vae_desc_ = o.vae;
  } else if (!source_.pixel_space) {
    torch::manual_seed(o.random_seed);  // default module init, made reproducible
    vae_ = Vae(fallback);
    vae_desc_ = "random";
  }
  if (vae_) {
    (*vae_)->to(device_, dtype_);
    (*vae_)->eval();
  }
}

int64_t Generator::image_size() const {
  return config().input_size * (vae_ ? (*vae_)->config().downscale() : 1);
}

GenerateParams Generator::default_params() const {
  GenerateParams p;
  const auto& s = source_.sampling;
  if (s.contains("num_sampling_steps")) p.steps = s["num_sampling_steps"].get<int64_t>();
  if (s.contains("cfg_scale")) p.cfg_scale = s["cfg_scale"].get<double>();
  if (s.contains("cfg_all_channels")) p.cfg_all_channels = s["cfg_all_channels"].get<bool>();
  if (s.contains("clip_denoised")) p.clip_denoised = s["clip_denoised"].get<bool>();
  return p;
}

std::string Generator::class_name(int64_t index) const { return dit_class_name(index, source_); }

std::string Generator::file_stem(int64_t index) const {
  const auto n = slugify(class_name(index));
  return n.empty() ? std::to_string(index) : std::to_string(index) + "_" + n;
}

GenerateStats Generator::generate(const GenerateParams& p, const std::function<void(const GeneratedBatch&)>& sink) {
  return generate_images(model_, vae(), p, device_, sink);
}

torch::Tensor Generator::generate(const GenerateParams& p) {
  std::vector<torch::Tensor> batches;
  generate(p, [&](const GeneratedBatch& b) { batches.push_back(b.images_u8); });
  return batches.empty() ? torch::empty({0, image_size(), image_size(), 3}, torch::kUInt8) : torch::cat(batches);
}

FidResult Generator::generate_fid(const GenerateParams& p, const FidOptions& o, dist::Group& group) {
  return generate_fid_samples(model_, vae(), p, device_, o, group);
}

nlohmann::json Generator::describe() const {
  return {{"model", o_.model.empty() ? config().name : o_.model},
          {"model_config_origin", source_.config_origin},
          {"model_config", config().to_json()},
          {"weights", o_.random_weights ? nlohmann::json("random (seed " + std::to_string(o_.random_seed) + ")")
                                        : nlohmann::json(o_.weights)},
          {"vae", vae_desc_},
          {"vae_config", vae_ ? (*vae_)->config().to_json() : nlohmann::json(nullptr)},
          {"device", device_to_string(device_)},
          {"dtype", precision_to_string(precision_)},
          {"image_size", {image_size(), image_size()}}};
}

nlohmann::json Generator::generation_sidecar(const std::string& tool, const GenerateParams& p,
                                             const std::vector<int64_t>& classes, int64_t num_per_class,
                                             const GenerateStats& stats) const {
  nlohmann::json classes_json = nlohmann::json::array();
  for (auto c : classes) classes_json.push_back({{"index", c}, {"name", class_name(c)}});
  nlohmann::json sidecar = describe();
  sidecar["tool"] = tool;
  sidecar["settings"] = params_to_json(p);
  sidecar["seed"] = p.seed;
  sidecar["classes"] = classes_json;
  sidecar["num_per_class"] = num_per_class;
  sidecar["labels"] = p.labels;
  sidecar["num_images"] = p.labels.size();
  sidecar["torch_version"] = TORCH_VERSION;
  sidecar["stats"] = {{"seconds", stats.seconds},
                      {"sampling_seconds", stats.sampling_seconds},
                      {"decode_seconds", stats.decode_seconds},
                      {"images_per_second", stats.images / std::max(1e-9, stats.seconds)}};
  return sidecar;
}

nlohmann::json Generator::fid_run_facts(const GenerateParams& p, int64_t num_samples,
                                        const std::vector<int64_t>& classes) const {
  return {{"model_config", config().to_json()},
          {"weights", o_.random_weights ? nlohmann::json("random") : file_facts(o_.weights)},
          {"vae", o_.vae.empty() ? nlohmann::json(vae_desc_) : file_facts(o_.vae)},
          {"vae_config", vae_ ? (*vae_)->config().to_json() : nlohmann::json(nullptr)},
          {"sampler", p.sampler}, {"steps", p.steps}, {"eta", p.eta}, {"cfg_scale", p.cfg_scale},
          {"cfg_all_channels", p.cfg_all_channels}, {"clip_denoised", p.clip_denoised}, {"seed", p.seed},
          {"rng", p.rng}, {"num_samples", num_samples}, {"classes", classes},
          {"device_type", device_.is_cuda() ? "cuda" : "cpu"}, {"dtype", precision_to_string(precision_)}};
}

}  // namespace moh::dit
