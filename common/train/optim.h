// Optimisation building blocks shared by vit/train and dit/train (the parts of SkyworkAI/MoH MoH-DiT/train.py and
// MoH-ViT/main.py + engine.py that are not model-specific):
//  - learning-rate schedule: linear warm-up then cosine decay (timm CosineLRScheduler shape, per step);
//  - FlatParams: every trainable parameter rebound as a view of ONE contiguous fp32 buffer, gradients likewise,
//    so clipping, AdamW and EMA are a handful of kernels per step instead of several per tensor (tiny models on
//    a GPU are launch-bound);
//  - FlatAdamW: torch.optim.AdamW semantics (decoupled weight decay, bias correction) with a per-element
//    weight-decay mask (timm's no-decay groups); own implementation so its state is plain tensors that we can
//    checkpoint identically under LibTorch 1.13 and 2.x (their optimizer state maps differ);
//  - Ema: train.py `update_ema` (ema = ema * decay + p * (1 - decay)) over ALL named parameters, incl. frozen
//    ones such as DiT's pos_embed;
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace moh {

// ---------------------------------------------------------------- learning rate
struct LrSchedule {
  double base_lr = 1e-3;
  double min_lr = 0.0;        // floor reached at the last step
  int64_t warmup_steps = 0;   // linear ramp base_lr * (s + 1) / warmup over steps [0, warmup)
  int64_t total_steps = 1;    // cosine from base_lr (at warmup) to min_lr (at total_steps - 1)
  bool cosine = true;         // false: constant base_lr after warm-up (DiT's paper setting)
  // Set by retarget(): from anchor_step on, the cosine runs from anchor_lr (the lr the old schedule gave at that
  // step) down to min_lr at total_steps - 1. -1: no anchor, the plain warm-up + cosine above.
  int64_t anchor_step = -1;
  double anchor_lr = 0.0;
  double at(int64_t step) const;  // lr used by the optimizer step with 0-based index `step`
  // Ends the schedule at new_total instead (a time budget re-fitted, a resume with another step count) without a
  // jump: at(step) stays what it was and the cosine from there reaches min_lr at new_total - 1. During warm-up
  // only total_steps changes (the cosine has not started, warm-up ends at base_lr whatever the total).
  void retarget(int64_t step, int64_t new_total);
  nlohmann::json to_json() const;                // every field, for checkpoints
  static LrSchedule from_json(const nlohmann::json& j);
};

// ---------------------------------------------------------------- flat parameters
class FlatParams {
 public:
  struct Slot {
    std::string name;
    torch::Tensor param;  // the module's parameter (now a view of data())
    int64_t offset = 0, numel = 0;
  };
  // Rebinds every parameter of `module` with requires_grad=true (registration order) as a view of one flat
  // buffer and attaches a flat gradient buffer. Call AFTER moving the module to its device. All trainable
  // parameters must share one floating dtype.
  explicit FlatParams(torch::nn::Module& module);

  const torch::Tensor& data() const { return data_; }
  const torch::Tensor& grad() const { return grad_; }
  const std::vector<Slot>& slots() const { return slots_; }
  int64_t numel() const { return data_.numel(); }

  void zero_grad();
  // Makes sure every parameter's gradient lives in grad() (autograd accumulates into the bound views; a module
  // or LibTorch version that replaced one is copied back and rebound). Returns grad().
  const torch::Tensor& sync_grads();
  // Per-parameter views of a flat tensor shaped like data(): (prefix + name, view).
  std::vector<std::pair<std::string, torch::Tensor>> split(const torch::Tensor& flat, const std::string& prefix) const;
  // Copies tensors[prefix + name] into the matching slice of `flat` for every slot; throws moh::Error listing
  // missing names and shape mismatches (`source` names the file).
  void load_into(torch::Tensor& flat, const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix,
                 const std::string& source) const;
  // A flat 0/1 mask: 1 where keep(name, param) is true.
  torch::Tensor mask(const std::function<bool(const std::string&, const torch::Tensor&)>& keep) const;

 private:
  std::vector<Slot> slots_;
  torch::Tensor data_, grad_;
};

// Clips the flat gradient to total L2 norm `max_norm` (torch.nn.utils.clip_grad_norm_: scale by
// max_norm / (norm + 1e-6) when larger). max_norm <= 0 only measures. Returns the norm before clipping as a
// 0-dim tensor on the gradient's device (read it only when logging).
torch::Tensor clip_grad_norm(const torch::Tensor& flat_grad, double max_norm);

// ---------------------------------------------------------------- optimizer
struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
};

class FlatAdamW {
 public:
  // decay_mask: flat 0/1 tensor (FlatParams::mask) selecting decayed elements; undefined = decay everything.
  FlatAdamW(FlatParams& params, AdamWOptions options, torch::Tensor decay_mask = {});
  void step(double lr);  // uses params.grad() (call sync_grads first)
  int64_t steps_taken() const { return t_; }
  const AdamWOptions& options() const { return options_; }
  torch::Tensor& exp_avg() { return m_; }
  torch::Tensor& exp_avg_sq() { return v_; }
  void set_steps_taken(int64_t t) { t_ = t; }

 private:
  FlatParams& params_;
  AdamWOptions options_;
  torch::Tensor decay_mask_, m_, v_;
  int64_t t_ = 0;
};

// ---------------------------------------------------------------- EMA
// EMA decay with warm-up for update number `updates` (0-based): min(decay, (1 + n) / (10 + n)). A short run
// with a plain 0.998 decay still holds 0.998^n of the random initial weights (16 % after 900 steps); the
// warm-up lets the average forget them within the first few hundred steps.
double ema_decay_at(double decay, int64_t updates);

class Ema {
 public:
  // Starts as a copy of every named parameter (train.py: update_ema(ema, model, decay=0)).
  Ema(torch::nn::Module& module, const FlatParams& flat);
  // ema = ema * decay + p * (1 - decay) for every named parameter (frozen ones too, as train.py).
  void update(double decay);
  // (name, ema value) for every named parameter, registration order (official key names).
  std::vector<std::pair<std::string, torch::Tensor>> named() const;
  // Loads values saved under `prefix` + name; throws moh::Error naming missing/mismatching tensors.
  void load(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix, const std::string& source);

 private:
  const FlatParams& flat_;
  torch::Tensor flat_ema_;
  std::vector<std::pair<std::string, torch::Tensor>> extra_param_, extra_ema_;  // parameters outside FlatParams
};

}  // namespace moh
