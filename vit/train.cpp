// MoH-TransNeXt training on Fashion-MNIST (see train.h).
#include "vit/train.h"

#include <cmath>

#include "common/runtime/device.h"
#include "common/error.h"
#include "common/moh/aux_loss.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"

namespace moh::vit {

// ---------------------------------------------------------------- options
nlohmann::json ViTTrainOptions::to_json() const {
  auto j = common.to_json();
  j["label_smoothing"] = label_smoothing;
  j["augment_shift"] = augment_shift;
  j["augment_flip"] = augment_flip;
  j["eval_limit"] = eval_limit;
  return j;
}

void ViTTrainOptions::update_from_json(const nlohmann::json& j, const std::string& where) {
  std::set<std::string> used;
  common.update_from_json(j, used);
  try {
    if (j.contains("label_smoothing")) label_smoothing = j["label_smoothing"].get<double>(), used.insert("label_smoothing");
    if (j.contains("augment_shift")) augment_shift = j["augment_shift"].get<int64_t>(), used.insert("augment_shift");
    if (j.contains("augment_flip")) augment_flip = j["augment_flip"].get<bool>(), used.insert("augment_flip");
    if (j.contains("eval_limit")) eval_limit = j["eval_limit"].get<int64_t>(), used.insert("eval_limit");
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": " + e.what());
  }
  reject_unknown_keys(j, used, where);
}

// ---------------------------------------------------------------- init
void init_vit_for_training(TransNeXt& model, uint64_t seed) {
  auto gen = step_generator(seed, 0x1417, 0);
  torch::NoGradGuard no_grad;
  for (auto& m : model->modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      lin->weight.normal_(0.0, 0.02, gen);  // timm trunc_normal_(std=.02): the +-2 cut is 100 std away
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* conv = m->as<torch::nn::Conv2d>()) {
      const auto& o = conv->options;
      const int64_t fan_out = o.kernel_size()->at(0) * o.kernel_size()->at(1) * o.out_channels() / o.groups();
      conv->weight.normal_(0.0, std::sqrt(2.0 / double(fan_out)), gen);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
      if (ln->weight.defined()) ln->weight.fill_(1.0);
      if (ln->bias.defined()) ln->bias.zero_();
    }
  }
}

// ---------------------------------------------------------------- aux loss
torch::Tensor vit_moh_aux_loss(TransNeXt& model, const ViTRecord& record, double coeff) {
  const ViTConfig& cfg = model->config();
  MoHAuxLoss aux;
  for (int s = 0; s < kNumStages; ++s) {
    if (cfg.routed_head.at(s) == 0) continue;
    const std::string sn = std::to_string(s + 1);
    for (int64_t j = 0; j < cfg.depths.at(s); ++j) {
      const std::string name = "block" + sn + "." + std::to_string(j);
      auto rp = record.find(name + ".attn.router_probs"), ti = record.find(name + ".attn.router_topk_indices");
      if (rp != record.end() && ti != record.end()) {
        aux.add(rp->second, ti->second);
        continue;
      }
      // The model does not record its router outputs: recompute them from the block input, which the record
      // holds (previous block's output or the stage's patch embedding), with the same gate function.
      auto in = record.find(j == 0 ? "patch_embed" + sn : "block" + sn + "." + std::to_string(j - 1));
      MOH_CHECK(in != record.end(), "vit aux loss: the forward record lacks the input of ", name);
      auto block = model->blocks.at(size_t(s))->ptr<BlockImpl>(size_t(j));
      auto u = block->norm1(in->second);
      MoHGateDebug dbg;
      if (block->aggregated())
        moh_gates(u, block->attn_agg->options().gate_config(), block->attn_agg->gate.weights(), &dbg);
      else
        moh_gates(u, block->attn_full->options().gate_config(), block->attn_full->gate.weights(), &dbg);
      aux.add(dbg.router_probs, dbg.topk_indices);
    }
  }
  return aux.total(coeff, model->parameters().front().device());
}

// ---------------------------------------------------------------- evaluation
double evaluate_fmnist(TransNeXt& model, const FashionMnistSplit& data, const FmnistPreprocess& pre,
                       int64_t batch_size, int64_t limit) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto dev = model->parameters().front().device();
  const int64_t n = limit > 0 ? std::min(limit, data.images.size(0)) : data.images.size(0);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; i += batch_size) {
    const int64_t b = std::min(batch_size, n - i);
    auto x = fmnist_to_input(data.images.narrow(0, i, b).to(dev), pre, model->config().in_chans);
    auto pred = model->forward(x).argmax(1);
    correct += pred.eq(data.labels.narrow(0, i, b).to(dev)).sum().item<int64_t>();
  }
  return n > 0 ? double(correct) / double(n) : 0.0;
}

// ---------------------------------------------------------------- training
namespace {

// Random shift (zero background) + horizontal flip of a uint8 batch [B, H, W], vectorised on its device.
torch::Tensor augment(const torch::Tensor& img, int64_t shift, bool flip, torch::Generator& gen) {
  const int64_t B = img.size(0), H = img.size(1), W = img.size(2);
  auto out = img;
  if (shift > 0) {
    auto padded = torch::constant_pad_nd(img, {shift, shift, shift, shift}, 0);  // [B, H+2s, W+2s]
    auto dy = torch::randint(0, 2 * shift + 1, {B}, gen, torch::kLong).to(img.device());
    auto dx = torch::randint(0, 2 * shift + 1, {B}, gen, torch::kLong).to(img.device());
    auto ar_h = torch::arange(H, torch::TensorOptions().dtype(torch::kLong).device(img.device()));
    auto ar_w = torch::arange(W, torch::TensorOptions().dtype(torch::kLong).device(img.device()));
    auto rows = (dy.unsqueeze(1) + ar_h.unsqueeze(0)).unsqueeze(2);  // [B, H, 1]
    auto cols = (dx.unsqueeze(1) + ar_w.unsqueeze(0)).unsqueeze(1);  // [B, 1, W]
    auto bidx = torch::arange(B, rows.options()).view({B, 1, 1});     // [B, 1, 1]
    out = padded.index({bidx, rows, cols});                           // [B, H, W]
  }
  if (flip) {
    auto f = (torch::rand({B}, gen) < 0.5).to(img.device()).view({B, 1, 1});  // [B] -> [B, 1, 1]
    out = torch::where(f, out.flip({2}), out);
  }
  return out;
}

bool decays(const std::string& name, const torch::Tensor& p) {
  // timm param groups: no decay for 1-D tensors, biases and TransNeXt's no_weight_decay_keywords.
  if (p.dim() <= 1 || (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0)) return false;
  for (const char* kw : {"query_embedding", "relative_pos_bias_local", "cpb", "temperature"})
    if (name.find(kw) != std::string::npos) return false;
  return true;
}

}  // namespace

ViTTrainResult train_vit(const ViTConfig& cfg_in, const FmnistPreprocess& pre, const ViTTrainOptions& options,
                         const std::function<void(const TrainLog&)>& on_log) {
  ViTConfig cfg = cfg_in;
  cfg.validate("ViT training config");
  MOH_CHECK(pre.output_size() == cfg.img_size, "preprocessing makes ", pre.output_size(), "x", pre.output_size(),
            " inputs (28 + 2*pad) * upsample) but the model's img_size is ", cfg.img_size,
            "; fix \"preprocess\" or img_size in the config");
  MOH_CHECK(cfg.num_classes == 10, "Fashion-MNIST has 10 classes but the config has num_classes ", cfg.num_classes);
  if (cfg.class_names.empty()) cfg.class_names = fashion_mnist_class_names();
  const TrainCommonOptions& co = options.common;
  const torch::Device device = parse_device(co.device);
  if (device.is_cuda()) enable_tf32();

  MOH_CHECK(!co.data_dir.empty(), "no Fashion-MNIST folder given: pass --data DIR");
  FashionMnistSplit train = load_fashion_mnist(co.data_dir, "train");
  if (co.train_limit > 0 && co.train_limit < train.images.size(0)) {
    train.images = train.images.narrow(0, 0, co.train_limit);
    train.labels = train.labels.narrow(0, 0, co.train_limit);
  }
  auto images = train.images.to(device), labels = train.labels.to(device);  // 47 MB: keep it on the device

  torch::manual_seed(co.seed);  // the constructors draw query_embedding & co. from the global generator
  TransNeXt model(cfg);
  init_vit_for_training(model, co.seed);
  if (!co.init_from.empty()) load_init_weights(co.init_from, "vit", *model);
  model->to(device);

  TrainLoopOptions lo = co.loop_options("vit");
  lo.ckpt_metadata = {{"kind", "vit"}, {"config", vit_config_to_json(cfg).dump()},
                      {"preprocess", pre.to_json().dump()}, {"train", options.to_json().dump()}};
  Trainer trainer(*model, lo, decays);
  if (!co.resume.empty()) trainer.resume(co.resume);

  EpochSampler sampler(images.size(0), co.batch_size, co.seed);
  auto ce_opts = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing);
  trainer.run(
      [&](int64_t step) {
        auto gen = step_generator(co.seed, 1, step);
        auto idx = sampler.indices(step).to(device);
        auto batch = augment(images.index_select(0, idx), options.augment_shift, options.augment_flip, gen);
        auto x = fmnist_to_input(batch, pre, cfg.in_chans);
        ViTRecord record;
        auto logits = model->forward(x, &record);
        StepLosses l;
        l.main = torch::nn::functional::cross_entropy(logits, labels.index_select(0, idx), ce_opts);
        l.aux = vit_moh_aux_loss(model, record, co.moh_loss_coeff);
        l.loss = l.main + l.aux;
        return l;
      },
      on_log);

  ViTTrainResult r;
  r.steps_done = trainer.step();
  r.final_loss = trainer.last_loss();
  if (options.eval_limit >= 0) {
    FashionMnistSplit test = load_fashion_mnist(co.data_dir, "test");
    r.test_images = options.eval_limit > 0 ? std::min(options.eval_limit, test.images.size(0)) : test.images.size(0);
    r.test_accuracy = evaluate_fmnist(model, test, pre, 500, options.eval_limit);
  }
  if (!co.out.empty()) {
    std::map<std::string, std::string> meta = lo.ckpt_metadata;
    meta["format"] = "moh-model-v1";
    meta["class_names"] = nlohmann::json(cfg.class_names).dump();
    meta["steps"] = std::to_string(r.steps_done);
    if (r.test_accuracy >= 0) meta["test_accuracy"] = std::to_string(r.test_accuracy);
    write_safetensors(co.out, trainer.export_weights(/*use_ema=*/true), meta);
  }
  return r;
}

}  // namespace moh::vit
