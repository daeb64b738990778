// Pixel-space MoH-DiT training on Fashion-MNIST (see train.h).
#include "dit/train.h"

#include <cmath>

#include "common/runtime/device.h"
#include "common/error.h"
#include "common/datasets/idx.h"
#include "common/moh/attention.h"
#include "common/moh/aux_loss.h"
#include "common/weights/safetensors.h"
#include "dit/diffusion.h"
#include "dit/training_losses.h"

namespace moh::dit {

nlohmann::json DiTTrainOptions::to_json() const {
  auto j = common.to_json();
  j["augment_flip"] = augment_flip;
  j["diffusion_steps"] = diffusion_steps;
  return j;
}

void DiTTrainOptions::update_from_json(const nlohmann::json& j, const std::string& where) {
  std::set<std::string> used;
  common.update_from_json(j, used);
  try {
    if (j.contains("augment_flip")) augment_flip = j["augment_flip"].get<bool>(), used.insert("augment_flip");
    if (j.contains("diffusion_steps")) diffusion_steps = j["diffusion_steps"].get<int64_t>(), used.insert("diffusion_steps");
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": " + e.what());
  }
  reject_unknown_keys(j, used, where);
}

torch::Tensor fmnist_to_pixels(const torch::Tensor& images_u8, int64_t size) {
  MOH_CHECK(images_u8.dim() == 3, "fmnist_to_pixels: expected uint8 images [B, H, W], got ", images_u8.sizes());
  const int64_t H = images_u8.size(1), W = images_u8.size(2);
  MOH_CHECK(size >= H && size >= W && (size - H) % 2 == 0 && (size - W) % 2 == 0, "a pixel-space DiT with input_size ",
            size, " cannot hold ", H, "x", W, " images (needs input_size >= the image side, even difference)");
  auto x = images_u8.to(torch::kFloat32).div(127.5).sub(1.0).unsqueeze(1);  // [B, H, W] -> [B, 1, H, W] in [-1, 1]
  const int64_t ph = (size - H) / 2, pw = (size - W) / 2;
  if (ph > 0 || pw > 0) x = torch::constant_pad_nd(x, {pw, pw, ph, ph}, -1.0);  // background is -1
  return x;
}

void init_dit_for_training(DiT& model, uint64_t seed) {
  auto gen = step_generator(seed, 0xD17, 0);
  torch::NoGradGuard no_grad;
  auto xavier = [&](torch::Tensor& w) {  // w viewed as [out, fan_in]
    const double fan_out = double(w.size(0)), fan_in = double(w.numel() / w.size(0));
    const double a = std::sqrt(6.0 / (fan_in + fan_out));
    w.uniform_(-a, a, gen);
  };
  for (auto& m : model->modules(/*include_self=*/false)) {
    if (auto* lin = m->as<Linear>()) {  // _basic_init: every nn.Linear
      xavier(lin->weight);
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* gate = m->as<torch::nn::LinearImpl>()) {  // the router's wg / wg_0 / wg_1 (bias-free)
      xavier(gate->weight);
    }
  }
  xavier(model->x_embedder->proj->weight);
  model->x_embedder->proj->bias.zero_();
  model->y_embedder->embedding_table->weight.normal_(0.0, 0.02, gen);
  model->t_embedder->mlp[0]->as<Linear>()->weight.normal_(0.0, 0.02, gen);
  model->t_embedder->mlp[2]->as<Linear>()->weight.normal_(0.0, 0.02, gen);
  for (auto& b : *model->blocks) {
    auto* lin = b->as<DiTBlockImpl>()->adaLN_modulation[1]->as<Linear>();
    lin->weight.zero_();
    lin->bias.zero_();
  }
  auto* fl = model->final_layer->adaLN_modulation[1]->as<Linear>();
  fl->weight.zero_();
  fl->bias.zero_();
  model->final_layer->linear->weight.zero_();
  model->final_layer->linear->bias.zero_();
  // pos_embed keeps the fixed sin-cos table the constructor computed.
}

void check_attention_trainable(const torch::Device& device) {
  auto opts = torch::TensorOptions().device(device).dtype(torch::kFloat32).requires_grad(true);
  auto q = torch::randn({1, 2, 4, 32}, opts), k = torch::randn({1, 2, 4, 32}, opts), v = torch::randn({1, 2, 4, 32}, opts);
  auto g = torch::ones({1, 4, 2}, opts);
  auto y = moh_gated_attention(q, k, v, g, 0.125);
  if (!y.requires_grad())
    throw Unsupported("MoH attention on " + device_to_string(device) + " has no backward (the sparse CUDA kernel "
                      "ran on tensors that require grad); DiT training there needs common/moh/attention.cpp to use "
                      "the LibTorch reference when autograd is recording. Train with --device cpu meanwhile.");
}

DiTTrainResult train_dit(const DiTConfig& cfg_in, const DiTTrainOptions& options,
                         const std::vector<std::string>& class_names_in,
                         const std::function<void(const TrainLog&)>& on_log) {
  DiTConfig cfg = cfg_in;
  cfg.validate("DiT training config");
  MOH_CHECK(cfg.num_classes == 10, "Fashion-MNIST has 10 classes but the config has num_classes ", cfg.num_classes);
  MOH_CHECK(cfg.in_channels == 1, "a pixel-space Fashion-MNIST DiT needs in_channels 1 (got ", cfg.in_channels, ")");
  const TrainCommonOptions& co = options.common;
  const torch::Device device = parse_device(co.device);
  if (device.is_cuda()) enable_tf32();
  check_attention_trainable(device);
  const std::vector<std::string> class_names = class_names_in.empty() ? fashion_mnist_class_names() : class_names_in;
  MOH_CHECK(int64_t(class_names.size()) == cfg.num_classes, "class_names has ", class_names.size(), " entries, ",
            "num_classes is ", cfg.num_classes);

  MOH_CHECK(!co.data_dir.empty(), "no Fashion-MNIST folder given: pass --data DIR");
  FashionMnistSplit train = load_fashion_mnist(co.data_dir, "train");
  if (co.train_limit > 0 && co.train_limit < train.images.size(0)) {
    train.images = train.images.narrow(0, 0, co.train_limit);
    train.labels = train.labels.narrow(0, 0, co.train_limit);
  }
  auto images = train.images.to(device), labels = train.labels.to(device);

  DiT model(cfg);
  for (auto& p : model->named_parameters(true))
    p.value().set_requires_grad(p.key() != "pos_embed");  // official: pos_embed is a frozen nn.Parameter
  init_dit_for_training(model, co.seed);
  if (!co.init_from.empty()) load_init_weights(co.init_from, "dit", *model);
  model->to(device);

  auto diffusion = GaussianDiffusion::create("", cfg.learn_sigma, options.diffusion_steps);
  TrainLoopOptions lo = co.loop_options("dit");
  lo.ckpt_metadata = {{"kind", "dit"}, {"config", cfg.to_json().dump()},
                      {"class_names", nlohmann::json(class_names).dump()}, {"train", options.to_json().dump()},
                      {"pixel_space", "1"}, {"data_range", "[-1, 1]"}};
  Trainer trainer(*model, lo);  // train.py: AdamW(weight_decay=0) -> nothing to exclude
  if (!co.resume.empty()) trainer.resume(co.resume);

  EpochSampler sampler(images.size(0), co.batch_size, co.seed);
  const int64_t B = co.batch_size;
  trainer.run(
      [&](int64_t step) {
        auto gen = step_generator(co.seed, 2, step);
        auto idx = sampler.indices(step).to(device);
        auto batch = images.index_select(0, idx);
        if (options.augment_flip) {
          auto f = (torch::rand({B}, gen) < 0.5).to(device).view({B, 1, 1});  // [B] -> [B, 1, 1]
          batch = torch::where(f, batch.flip({2}), batch);
        }
        auto x0 = fmnist_to_pixels(batch, cfg.input_size);
        auto t = torch::randint(0, diffusion.num_timesteps, {B}, gen, torch::kLong);
        auto noise = torch::randn(x0.sizes(), gen, torch::kFloat32).to(device);
        auto y = labels.index_select(0, idx);
        if (cfg.has_null_class()) {  // LabelEmbedder.token_drop: label -> null class with class_dropout_prob
          auto drop = (torch::rand({B}, gen) < cfg.class_dropout_prob).to(device);
          y = torch::where(drop, torch::full_like(y, cfg.null_class()), y);
        }
        DiTDebug debug;
        auto denoise = [&](const torch::Tensor& x_t, const torch::Tensor& t_orig) {
          return model->forward(x_t, t_orig, y, &debug);
        };
        auto terms = training_losses(diffusion, denoise, x0, t.to(device), noise);
        MoHAuxLoss aux;
        for (int64_t i = 0; i < cfg.depth; ++i) {
          const std::string name = "blocks." + std::to_string(i) + ".attn.";
          auto rp = debug.tensors.find(name + "router_probs"), ti = debug.tensors.find(name + "router_topk_indices");
          if (rp != debug.tensors.end() && ti != debug.tensors.end()) aux.add(rp->second, ti->second);
        }
        StepLosses l;
        l.main = terms.loss.mean();
        l.aux = aux.total(co.moh_loss_coeff, device);
        l.loss = l.main + l.aux;
        return l;
      },
      on_log);

  DiTTrainResult r;
  r.steps_done = trainer.step();
  r.final_loss = trainer.last_loss();
  if (!co.out.empty()) {
    std::map<std::string, std::string> meta = lo.ckpt_metadata;
    meta["format"] = "moh-model-v1";
    meta["steps"] = std::to_string(r.steps_done);
    meta["weights"] = trainer.ema() ? "ema" : "model";
    if (!options.sampling.empty()) meta["sampling"] = options.sampling.dump();
    write_safetensors(co.out, trainer.export_weights(/*use_ema=*/true), meta);
  }
  return r;
}

}  // namespace moh::dit
