// Training a MoH-TransNeXt classifier on Fashion-MNIST: the toolkit's out-of-the-box demo classifier.
// Mirrors the recipe of SkyworkAI/MoH MoH-ViT/main.py + engine.py `train_one_epoch` at toy scale: AdamW with
// weight decay except 1-D / bias / `no_weight_decay_keywords` parameters, linear warm-up + cosine LR, label
// smoothing, gradient clipping (configs: clip_grad 1.0), and the MoH load-balancing loss
// 0.01 * mean_layers(l_aux) (common/moh/aux_loss.h). Weights are initialised like TransNeXt `_init_weights`.
// fp32 everywhere (TF32 matmuls on CUDA): LibTorch 1.13 and 2.x share no autocast API.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/datasets/idx.h"
#include "common/train/trainer.h"
#include "vit/config.h"
#include "vit/fmnist_input.h"
#include "vit/model.h"

namespace moh::vit {

struct ViTTrainOptions {
  TrainCommonOptions common;     // steps, batch, lr, warmup, weight decay, clip, seed, device, files, ...
  double label_smoothing = 0.1;
  int64_t augment_shift = 2;     // random translation of up to +-N pixels (0 = off)
  bool augment_flip = true;      // random horizontal flip
  int64_t eval_limit = 0;        // test images to evaluate after training (0 = all, < 0 = skip)
  nlohmann::json to_json() const;
  // Sets the fields named in j (common and ViT-specific keys); unknown keys are errors.
  void update_from_json(const nlohmann::json& j, const std::string& where);
};

struct ViTTrainResult {
  int64_t steps_done = 0;
  double final_loss = 0;        // mean total loss of the last log window
  double test_accuracy = -1;    // top-1 on the evaluated test images, -1 when skipped
  int64_t test_images = 0;
};

// Builds the model from `cfg` (seeded init), trains, evaluates and exports. on_log: progress lines.
ViTTrainResult train_vit(const ViTConfig& cfg, const FmnistPreprocess& pre, const ViTTrainOptions& options,
                         const std::function<void(const TrainLog&)>& on_log = nullptr);

// TransNeXt `_init_weights` (Linear N(0, 0.02) weight / 0 bias, Conv2d N(0, sqrt(2 / fan_out)) / 0 bias,
// LayerNorm 1 / 0); the attention-specific tensors keep the values the constructors gave them.
void init_vit_for_training(TransNeXt& model, uint64_t seed);

// Top-1 accuracy of `model` (eval mode, no grad) on the first `limit` images of `data` (0 = all).
double evaluate_fmnist(TransNeXt& model, const FashionMnistSplit& data, const FmnistPreprocess& pre,
                       int64_t batch_size, int64_t limit = 0);

// The MoH aux loss of one recorded training forward (router probabilities of every routed layer).
torch::Tensor vit_moh_aux_loss(TransNeXt& model, const ViTRecord& record, double coeff);

}  // namespace moh::vit
