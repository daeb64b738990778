// Training a class-conditional pixel-space MoH-DiT on Fashion-MNIST: the toolkit's out-of-the-box demo
// generator. Mirrors SkyworkAI/MoH MoH-DiT/train.py at toy scale, on pixels instead of VAE latents:
// images scaled to [-1, 1] (Normalize(0.5, 0.5)) with random horizontal flips, t ~ U{0..999}, the learned-sigma
// objective of dit/training_losses.h on the 1000-step linear schedule (`create_diffusion("")`), label dropout
// to the null class with class_dropout_prob (LabelEmbedder.token_drop, for classifier-free guidance), the MoH
// load-balancing loss coeff * mean_layers(l_aux), AdamW, and an EMA over all named parameters (pos_embed
// included) that is what gets exported. Weights are initialised like `DiT.initialize_weights`.
// fp32 everywhere (TF32 matmuls on CUDA): LibTorch 1.13 and 2.x share no autocast API.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/train/trainer.h"
#include "dit/config.h"
#include "dit/model.h"

namespace moh::dit {

struct DiTTrainOptions {
  TrainCommonOptions common;  // steps, batch, lr, warmup, EMA decay, clip, seed, device, files, ...
  bool augment_flip = true;   // train.py: RandomHorizontalFlip
  int64_t diffusion_steps = 1000;
  // Sampler defaults stored with the exported model (metadata "sampling", read by moh-generate): the config's
  // "sampling" block without its data-convention keys, e.g. {"num_sampling_steps", "cfg_scale", ...}.
  nlohmann::json sampling = nlohmann::json::object();
  nlohmann::json to_json() const;
  void update_from_json(const nlohmann::json& j, const std::string& where);  // unknown keys are errors
};

struct DiTTrainResult {
  int64_t steps_done = 0;
  double final_loss = 0;  // mean total loss of the last log window
};

// uint8 images [B, 28, 28] -> float [B, 1, S, S] in [-1, 1], centred with -1 (background) padding to S.
torch::Tensor fmnist_to_pixels(const torch::Tensor& images_u8, int64_t size);

// `DiT.initialize_weights`: xavier-uniform Linears (bias 0), x_embedder conv as a flattened xavier Linear,
// label table N(0, 0.02), t_embedder MLP weights N(0, 0.02), zero adaLN modulations and final linear.
void init_dit_for_training(DiT& model, uint64_t seed);

// Trains `cfg` (in_channels 1, input_size >= 28, num_classes 10) on Fashion-MNIST and exports the EMA weights
// (metadata: kind, config, class_names, train options).
DiTTrainResult train_dit(const DiTConfig& cfg, const DiTTrainOptions& options,
                         const std::vector<std::string>& class_names = {},
                         const std::function<void(const TrainLog&)>& on_log = nullptr);

// Throws moh::Unsupported when MoH attention on `device` cannot back-propagate (a CUDA kernel without a
// backward would silently leave qkv and the router untrained).
void check_attention_trainable(const torch::Device& device);

}  // namespace moh::dit
