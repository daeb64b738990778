// moh::vit::Classifier, the public API for classifying pictures with a MoH-ViT: opens a weights file (config from
// its metadata or a preset / config JSON), applies the official evaluation preprocessing (common/image/preprocess.h,
// MoH-ViT/datasets.py build_transform(is_train=False)) or a demo model's stored transform, runs batched inference on
// any device/dtype and returns softmax top-k with class names (ImageNet for 1000-class models, or the config's
// class_names). Mirrors the inference half of MoH-ViT/engine.py `evaluate`.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/image/image_io.h"
#include "common/runtime/precision.h"
#include "vit/config.h"
#include "vit/eval_transform.h"
#include "vit/model.h"
#include "vit/model_source.h"

namespace moh::vit {

struct ClassPrediction {
  int64_t index = 0;
  std::string label;  // class name ("" when the model has no names for its classes)
  float probability = 0;
};

struct ClassifyResult {
  std::string path;
  bool ok = false;
  std::string error;  // why the image was skipped
  std::vector<ClassPrediction> top;
};

// How to open a classifier from files.
struct ClassifierOptions {
  std::string weights;        // .safetensors or PyTorch checkpoint; "" only with random_weights
  std::string model;          // preset or config .json; "" = the config recorded in the weights
  std::string device = "auto";  // auto|cpu|cuda[:N]
  std::string dtype = "auto";   // auto|fp32|mixed|bf16|fp16 (common/runtime/precision.h; auto: mixed on CUDA, fp32 on CPU)
  bool random_weights = false;  // an untrained `model` (smoke tests; predictions mean nothing)
  // classify_files refuses pictures above this many pixels from their header (Pillow's decompression-bomb limit).
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

class Classifier {
 public:
  // Opens the model `o` names. Throws moh::Error saying which file or option was wrong and what to pass.
  explicit Classifier(const ClassifierOptions& o);
  // Builds the model for cfg, loads `weights` (safetensors; empty = random weights), moves it to device/dtype.
  Classifier(const ViTConfig& cfg, const std::string& weights, const torch::Device& device, torch::Dtype dtype);
  // Same from a resolved source (vit/model_source.h): a self-describing model also brings its input transform.
  Classifier(const ViTModelSource& source, const torch::Device& device, torch::Dtype dtype);
  // Same under a precision policy (common/runtime/precision.h; mixed: bf16 GEMMs, fp32 LayerNorm / router / stream).
  Classifier(const ViTModelSource& source, const torch::Device& device, Precision precision);
  // Wraps an already built model (moved to device/dtype, set to eval mode).
  Classifier(TransNeXt model, const torch::Device& device, torch::Dtype dtype);

  const ViTConfig& config() const { return model_->config(); }
  const std::string& config_origin() const { return config_origin_; }  // "weights metadata", "preset ...", ...
  TransNeXt& model() { return model_; }
  const torch::Device& device() const { return device_; }
  torch::Dtype dtype() const { return dtype_; }  // what inputs are cast to (the residual stream's dtype)
  Precision precision() const { return precision_; }

  // The model's input transform -> [in_chans, S, S] float32 (CPU): the official eval transform at img_size, or
  // for the Fashion-MNIST demo models gray 28x28 + their stored preprocessing.
  torch::Tensor preprocess(const ImageU8& img) const;
  // 28x28 uint8 pictures [B, 28, 28] (IDX data) -> model inputs [B, in_chans, S, S]; demo models only.
  torch::Tensor preprocess_gray28(const torch::Tensor& images_u8) const;
  const std::optional<FmnistPreprocess>& fmnist() const { return fmnist_; }
  // timm-style evaluation options for RGB models (vit/eval_transform.h; the default is the official transform).
  // Throws moh::Error for a model with a stored 28x28 gray transform (the demo models) unless `t` is the default.
  void set_eval_transform(const EvalTransform& t);
  const EvalTransform& eval_transform() const { return transform_; }
  // The input transform preprocess() applies, resolved, as JSON (the official/timm one, or the demo model's).
  nlohmann::json transform_json() const;
  // batch [B, 3, S, S] float (any device) -> logits [B, num_classes] float32 on the CPU.
  torch::Tensor logits(const torch::Tensor& batch);
  // softmax(logits) in float32 -> top-k per row (k clipped to num_classes), highest first.
  std::vector<std::vector<ClassPrediction>> top_k(const torch::Tensor& logits, int k) const;
  std::string label(int64_t index) const;

  // How classify_files decodes pictures (the pixel limit; ClassifierOptions::max_image_pixels sets it).
  const ImageDecodeOptions& image_decode_options() const { return decode_; }
  void set_image_decode_options(const ImageDecodeOptions& o) { decode_ = o; }
  // Decodes, preprocesses and classifies `paths` in batches; unreadable images (corrupt, truncated, above the pixel
  // limit) get ok == false and an error.
  // `on_result` (optional) sees each result as soon as its batch is done.
  std::vector<ClassifyResult> classify_files(const std::vector<std::string>& paths, int batch_size, int k,
                                             const std::function<void(const ClassifyResult&)>& on_result = {});

 private:
  TransNeXt model_;
  torch::Device device_;
  torch::Dtype dtype_;
  Precision precision_ = Precision::kFp32;
  std::optional<FmnistPreprocess> fmnist_;
  EvalTransform transform_;
  std::string config_origin_;
  ImageDecodeOptions decode_;
};

}  // namespace moh::vit
