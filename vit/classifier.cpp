// moh::vit::Classifier (vit/classifier.h): model opening, preprocessing, batched logits, top-k.
#include "vit/classifier.h"

#include <algorithm>

#include "common/runtime/device.h"
#include "common/error.h"
#include "common/datasets/imagenet.h"
#include "common/image/image_io.h"
#include "common/runtime/precision.h"
#include "common/image/preprocess.h"
#include "vit/precision.h"

namespace moh::vit {

Classifier::Classifier(const ViTConfig& cfg, const std::string& weights, const torch::Device& device,
                       torch::Dtype dtype)
    : model_(build_vit(cfg, weights, device, dtype)), device_(device), dtype_(dtype),
      precision_(precision_of_dtype(dtype)) {}

Classifier::Classifier(const ViTModelSource& source, const torch::Device& device, torch::Dtype dtype)
    : Classifier(source, device, precision_of_dtype(dtype)) {}

Classifier::Classifier(const ViTModelSource& source, const torch::Device& device, Precision precision)
    : model_(build_vit(source.config, source.weights, torch::kCPU, torch::kFloat32)),
      device_(device),
      dtype_(stream_dtype(precision)),
      precision_(precision),
      fmnist_(source.fmnist),
      config_origin_(source.config_origin) {
  apply_vit_precision(model_, device_, precision_);  // loaded in fp32 on the CPU, then placed and cast
}

namespace {
ViTModelSource source_for(const ClassifierOptions& o) {
  MOH_CHECK(!o.weights.empty() || o.random_weights,
            "no weights file given: the demo model models/moh-vit-fmnist.safetensors ships with the toolkit; official "
            "MoH-ViT checkpoints (Hugging Face Chat-UniVi/MoH-ViT-*) go with a model preset (random weights only for "
            "smoke tests)");
  MOH_CHECK(o.weights.empty() || !o.random_weights, "a weights file and random weights exclude each other");
  MOH_CHECK(!o.random_weights || !o.model.empty(), "random weights need a model preset or config (which architecture "
            "to initialise)");
  return resolve_vit_source(o.weights, o.model);
}
}  // namespace

Classifier::Classifier(const ClassifierOptions& o)
    : Classifier(source_for(o), parse_device(o.device), parse_precision(o.dtype, parse_device(o.device))) {
  MOH_CHECK(o.max_image_pixels > 0, "the image pixel limit must be positive (got ", o.max_image_pixels, ")");
  decode_.max_pixels = o.max_image_pixels;
}

Classifier::Classifier(TransNeXt model, const torch::Device& device, torch::Dtype dtype)
    : model_(std::move(model)), device_(device), dtype_(dtype), precision_(precision_of_dtype(dtype)) {
  model_->to(device_, dtype_);
  model_->eval();
}

torch::Tensor Classifier::preprocess(const ImageU8& img) const {
  if (fmnist_) return preprocess_gray28(to_fmnist_gray28(img).unsqueeze(0))[0];  // [28, 28] -> [1, 28, 28]
  MOH_CHECK(config().in_chans == 3, "model '", config().name, "' takes ", config().in_chans,
            "-channel inputs but records no input transform for pictures (its weights have no 'preprocess' metadata)");
  return apply_eval_transform(img, transform_, static_cast<int>(config().img_size));
}

void Classifier::set_eval_transform(const EvalTransform& t) {
  validate_eval_transform(t);
  MOH_CHECK(!fmnist_ || t.is_official(), "model '", config().name, "' brings its own 28x28 gray input transform; ",
            "img_size / crop_pct / interpolation / mean / std apply to RGB ImageNet models only");
  transform_ = t;
}

nlohmann::json Classifier::transform_json() const {
  if (fmnist_) return {{"origin", "the model's stored 28x28 gray transform"}, {"preprocess", fmnist_->to_json()}};
  return eval_transform_json(transform_, static_cast<int>(config().img_size));
}

torch::Tensor Classifier::preprocess_gray28(const torch::Tensor& images_u8) const {
  MOH_CHECK(fmnist_.has_value(), "model '", config().name, "' is not a 28x28 gray-picture model (no 'preprocess' ",
            "metadata in its weights); it takes RGB pictures");
  return fmnist_to_input(images_u8, *fmnist_, config().in_chans);
}

torch::Tensor Classifier::logits(const torch::Tensor& batch) {
  torch::NoGradGuard no_grad;
  auto x = batch.to(device_, dtype_, /*non_blocking=*/true);
  return model_->forward(x).to(torch::kCPU, torch::kFloat32);
}

std::string Classifier::label(int64_t index) const {
  const auto& cfg = config();
  if (!cfg.class_names.empty()) return cfg.class_name(index);
  if (cfg.num_classes == 1000 && index >= 0 && index < 1000) return imagenet_classes()[index].name;
  return "";
}

std::vector<std::vector<ClassPrediction>> Classifier::top_k(const torch::Tensor& logits, int k) const {
  MOH_CHECK(k >= 1, "top-k needs k >= 1 (got ", k, ")");
  auto probs = logits.to(torch::kCPU, torch::kFloat32).softmax(-1);  // [B, classes]
  const int64_t kk = std::min<int64_t>(k, probs.size(1));
  auto top = torch::topk(probs, kk, -1);
  auto values = std::get<0>(top), indices = std::get<1>(top);  // [B, kk] each, highest first
  std::vector<std::vector<ClassPrediction>> out(probs.size(0));
  for (int64_t b = 0; b < probs.size(0); ++b)
    for (int64_t i = 0; i < kk; ++i) {
      const auto idx = indices[b][i].item<int64_t>();
      out[b].push_back({idx, label(idx), values[b][i].item<float>()});
    }
  return out;
}

std::vector<ClassifyResult> Classifier::classify_files(const std::vector<std::string>& paths, int batch_size, int k,
                                                       const std::function<void(const ClassifyResult&)>& on_result) {
  MOH_CHECK(batch_size >= 1, "batch size must be >= 1 (got ", batch_size, ")");
  std::vector<ClassifyResult> results(paths.size());
  for (size_t start = 0; start < paths.size(); start += batch_size) {
    const size_t end = std::min(paths.size(), start + batch_size);
    std::vector<torch::Tensor> inputs;
    std::vector<size_t> which;
    for (size_t i = start; i < end; ++i) {
      results[i].path = paths[i];
      try {
        inputs.push_back(preprocess(decode_image_file(paths[i], decode_)));
        which.push_back(i);
      } catch (const std::exception& e) {
        results[i].error = e.what();
      }
    }
    if (!inputs.empty()) {
      auto top = top_k(logits(torch::stack(inputs)), k);  // [b, 3, S, S] -> top-k per image
      for (size_t j = 0; j < which.size(); ++j) {
        results[which[j]].ok = true;
        results[which[j]].top = std::move(top[j]);
      }
    }
    if (on_result)
      for (size_t i = start; i < end; ++i) on_result(results[i]);
  }
  return results;
}

}  // namespace moh::vit
