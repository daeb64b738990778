// moh::dit::Generator, the public API for class-conditional generation with MoH-DiT (the job of
// MoH-DiT/sample.py and sample_ddp.py): opens the DiT weights (config from their metadata or a preset / config
// JSON) and the SD VAE (or none for pixel-space models), knows the model's classes and its recorded sampler
// settings, and generates images batch by batch (dit/generate.h) or a resumable FID sample set
// (dit/fid_sampling.h), reporting progress through GenerateParams::on_step.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/dist/distributed.h"
#include "common/runtime/precision.h"
#include "dit/fid_sampling.h"
#include "dit/generate.h"
#include "dit/generation_output.h"
#include "dit/model.h"
#include "dit/model_source.h"
#include "dit/vae.h"

namespace moh::dit {

// How to open a generator from files.
struct GeneratorOptions {
  std::string weights;                      // DiT weights (.safetensors / PyTorch checkpoint); "" with random_weights
  std::string model;                        // preset or config .json; "" = the config recorded in the weights
  std::string vae;                          // SD VAE weights; "" for pixel-space models (or random with random_weights)
  std::string vae_config = "sd-vae-ft-ema"; // VAE architecture when its file records none: preset or config.json
  bool random_weights = false;              // untrained DiT (and VAE without a file): smoke tests only
  uint64_t random_seed = 0;                 // seeds the random weights
  std::string device = "auto";              // auto|cpu|cuda[:N] (with a process group: this rank's GPU)
  std::string dtype = "auto";               // auto|fp32|mixed|bf16|fp16 (common/runtime/precision.h; auto: mixed on CUDA)
};

// sample.py's fixed labels, generated when no class is asked of an ImageNet model.
extern const std::vector<int64_t> kSamplePyLabels;

// Class queries -> indices for model `m`: an index, the model's class name, "all", or for ImageNet models a wnid
// or name. No query: every class when `all_when_empty`, sample.py's eight for ImageNet models otherwise; models
// with their own classes need at least one. Throws moh::Error naming the unknown query and a close match.
std::vector<int64_t> resolve_classes(const DiTModelSource& m, const std::vector<std::string>& queries,
                                     bool all_when_empty = false);

class Generator {
 public:
  // The model `o` describes, without loading any weights (cheap: for checks before the heavy work). Throws
  // moh::Error saying which file or option was wrong and what to pass.
  static DiTModelSource resolve(const GeneratorOptions& o);
  // Opens the models `o` names (on this rank's device when `group` is given); `source` = resolve(o) when given.
  explicit Generator(const GeneratorOptions& o, const dist::Group* group = nullptr);
  Generator(const GeneratorOptions& o, DiTModelSource source, const dist::Group* group = nullptr);

  const DiTConfig& config() const { return source_.config; }
  const DiTModelSource& source() const { return source_; }
  DiT& model() { return model_; }
  Vae* vae() { return vae_ ? &*vae_ : nullptr; }
  const torch::Device& device() const { return device_; }
  torch::Dtype dtype() const { return dtype_; }  // the GEMM / VAE dtype (bf16 under mixed)
  Precision precision() const { return precision_; }
  int64_t image_size() const;  // pixels per side of the generated images

  // The official sampler defaults with the settings recorded in the weights applied (steps, cfg_scale,
  // cfg_all_channels, clip_denoised).
  GenerateParams default_params() const;

  std::vector<int64_t> resolve_classes(const std::vector<std::string>& queries, bool all_when_empty = false) const {
    return dit::resolve_classes(source_, queries, all_when_empty);
  }
  std::string class_name(int64_t index) const;  // "" when unnamed
  std::string file_stem(int64_t index) const;   // "207_golden_retriever" (moh-generate's file names)

  // Runs p (labels set) batch by batch, handing each decoded batch to `sink`.
  GenerateStats generate(const GenerateParams& p, const std::function<void(const GeneratedBatch&)>& sink);
  // Convenience: every image of p as uint8 [N, H, W, 3] on the CPU.
  torch::Tensor generate(const GenerateParams& p);
  // FID mode on this rank (rng per-sample; labels drawn from o.classes).
  FidResult generate_fid(const GenerateParams& p, const FidOptions& o, dist::Group& group);

  // Facts for sidecars: model config and origin, weights / VAE files, device, dtype.
  nlohmann::json describe() const;
  // generation.json of a finished run (moh-generate, moh-serve): describe() plus the tool, settings, seed, classes,
  // labels, LibTorch version and timing ("files" is added by GenerationWriter::commit).
  nlohmann::json generation_sidecar(const std::string& tool, const GenerateParams& p, const std::vector<int64_t>& classes,
                                    int64_t num_per_class, const GenerateStats& stats) const;
  // The settings that decide the pixels of an FID run (a resume must match them).
  nlohmann::json fid_run_facts(const GenerateParams& p, int64_t num_samples, const std::vector<int64_t>& classes) const;

 private:
  GeneratorOptions o_;
  DiTModelSource source_;
  torch::Device device_;
  Precision precision_;
  torch::Dtype dtype_;
  DiT model_{nullptr};
  std::optional<Vae> vae_;
  std::string vae_desc_;
};

}  // namespace moh::dit
