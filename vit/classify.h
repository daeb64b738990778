// MoH-ViT image classification as a library: input expansion (files, folders, globs), the official evaluation
// preprocessing (common/preprocess.h, MoH-ViT/datasets.py build_transform(is_train=False)), batched inference on
// any device/dtype, softmax + top-k with class names (ImageNet for 1000-class models, or the config's class_names).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/image_io.h"
#include "vit/config.h"
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

// True for the extensions torchvision's ImageFolder accepts (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp), any case.
bool has_image_extension(const std::string& path);

// Image files under `dir`, recursively, sorted. Symlink loops are entered once; unreadable sub-folders are skipped
// with a warning on stderr (the listing goes on).
std::vector<std::string> list_image_files(const std::string& dir);

// Files are kept as given (even missing ones: they fail later, per file); folders contribute their image files
// (recursively, sorted); arguments with * ? [ are globs. A folder or glob without images throws moh::Error.
std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs);

// The requested class of a picture written by moh-generate (file name NNNNNN_<class index>[_<name>].png), or -1
// when the name does not have that form.
int64_t requested_class_from_filename(const std::string& path);

// How often the classifier agrees with the class each generated picture was requested as: the check of a
// class-conditional generator by a classifier (the demo judges its DiT with its ViT this way).
struct AgreementRow {
  int64_t requested = 0;
  std::string name;
  int64_t images = 0, agreed = 0;
  int64_t most_predicted = -1;  // the class predicted most often for this requested class
  double rate() const { return images ? double(agreed) / double(images) : 0.0; }
};
struct Agreement {
  std::vector<AgreementRow> rows;  // by requested class, ascending
  int64_t images = 0, agreed = 0, unnamed = 0;  // unnamed: results whose file name carries no class
  double rate() const { return images ? double(agreed) / double(images) : 0.0; }
};

class Classifier;
Agreement agreement_by_class(const std::vector<ClassifyResult>& results, const Classifier& clf);

class Classifier {
 public:
  // Builds the model for cfg, loads `weights` (safetensors; empty = random weights), moves it to device/dtype.
  Classifier(const ViTConfig& cfg, const std::string& weights, const torch::Device& device, torch::Dtype dtype);
  // Same from a resolved source (vit/model_source.h): a self-describing model also brings its input transform.
  Classifier(const ViTModelSource& source, const torch::Device& device, torch::Dtype dtype);
  // Wraps an already built model (moved to device/dtype, set to eval mode).
  Classifier(TransNeXt model, const torch::Device& device, torch::Dtype dtype);

  const ViTConfig& config() const { return model_->config(); }
  TransNeXt& model() { return model_; }
  const torch::Device& device() const { return device_; }
  torch::Dtype dtype() const { return dtype_; }

  // The model's input transform -> [in_chans, S, S] float32 (CPU): the official eval transform at img_size, or
  // for the Fashion-MNIST demo models gray 28x28 + their stored preprocessing.
  torch::Tensor preprocess(const ImageU8& img) const;
  // 28x28 uint8 pictures [B, 28, 28] (IDX data) -> model inputs [B, in_chans, S, S]; demo models only.
  torch::Tensor preprocess_gray28(const torch::Tensor& images_u8) const;
  const std::optional<FmnistPreprocess>& fmnist() const { return fmnist_; }
  // batch [B, 3, S, S] float (any device) -> logits [B, num_classes] float32 on the CPU.
  torch::Tensor logits(const torch::Tensor& batch);
  // softmax(logits) in float32 -> top-k per row (k clipped to num_classes), highest first.
  std::vector<std::vector<ClassPrediction>> top_k(const torch::Tensor& logits, int k) const;
  std::string label(int64_t index) const;

  // Decodes, preprocesses and classifies `paths` in batches; unreadable images get ok == false and an error.
  // `on_result` (optional) sees each result as soon as its batch is done.
  std::vector<ClassifyResult> classify_files(const std::vector<std::string>& paths, int batch_size, int k,
                                             const std::function<void(const ClassifyResult&)>& on_result = {});

 private:
  TransNeXt model_;
  torch::Device device_;
  torch::Dtype dtype_;
  std::optional<FmnistPreprocess> fmnist_;
};

}  // namespace moh::vit
