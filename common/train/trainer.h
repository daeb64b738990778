// Training building blocks shared by vit/train and dit/train (the parts of SkyworkAI/MoH MoH-DiT/train.py and
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
//  - seeded, stateless data order and per-step random generators: batch b of step s depends only on
//    (seed, s), so a resumed run draws exactly what an uninterrupted run would;
//  - checkpoint/resume as safetensors: model + EMA + optimizer moments, step and configs in the metadata.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <memory>
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
  double at(int64_t step) const;  // lr used by the optimizer step with 0-based index `step`
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

// ---------------------------------------------------------------- randomness and data order
uint64_t mix_seed(uint64_t seed, uint64_t stream, uint64_t step);  // splitmix64-based, well spread
// A CPU generator for draw `stream` of step `step` (random tensors are drawn on CPU and moved, so runs are
// reproducible across devices and a resumed run draws the same numbers).
torch::Generator step_generator(uint64_t seed, uint64_t stream, int64_t step);
// Fisher-Yates permutation of 0..n-1 from a 64-bit seed (portable across standard libraries).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

// Shuffled mini-batches without replacement, reshuffled every epoch, dropping the last partial batch.
// Stateless: indices(step) depends only on (n, batch, seed, step).
class EpochSampler {
 public:
  EpochSampler(int64_t n, int64_t batch_size, uint64_t seed);
  int64_t steps_per_epoch() const { return n_ / batch_; }
  torch::Tensor indices(int64_t step);  // [batch] int64

 private:
  int64_t n_, batch_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> perm_;
};

// ---------------------------------------------------------------- checkpoints
// Resume file: "model.<name>" (all parameters and persistent buffers), "ema.<name>", "opt.exp_avg.<name>",
// "opt.exp_avg_sq.<name>", metadata format=moh-train-ckpt-v1, step, kind + caller metadata (configs).
void save_train_checkpoint(const std::string& path, torch::nn::Module& model, const FlatParams& flat,
                           FlatAdamW& opt, const Ema* ema, int64_t step,
                           std::map<std::string, std::string> metadata);
// Loads a file written by save_train_checkpoint into model/opt/ema (strict); checks metadata["kind"] equals
// `kind`. Returns the step to continue from; `metadata` (optional) receives the file's metadata.
int64_t load_train_checkpoint(const std::string& path, const std::string& kind, torch::nn::Module& model,
                              FlatParams& flat, FlatAdamW& opt, Ema* ema,
                              std::map<std::string, std::string>* metadata = nullptr);

// ---------------------------------------------------------------- the shared training loop
struct TrainLoopOptions {
  std::string kind;             // "vit" / "dit": stored in checkpoints, checked on resume
  int64_t steps = 1000;         // total optimizer steps (a resumed run continues up to this)
  int64_t batch_size = 128;     // for samples/s only
  LrSchedule lr;
  AdamWOptions adamw;
  double clip_grad = 0.0;       // <= 0: no clipping
  double ema_decay = 0.0;       // <= 0: no EMA
  int64_t log_every = 50;
  std::string ckpt_path;        // "" = no checkpoints
  int64_t ckpt_every = 0;       // 0 = only at the end (when ckpt_path is set)
  std::map<std::string, std::string> ckpt_metadata;  // configs etc. stored in every checkpoint
  // > 0: wall-clock budget of run() in seconds. After ~40 steps the measured speed sets the step count that fits
  // (never more than `steps`) and the cosine schedule is re-targeted to it, so the run ends with a decayed lr
  // instead of being killed mid-schedule. The step count then depends on the machine's speed.
  double time_limit_s = 0;
};

// What one training step's forward reports. `loss` is back-propagated; the others are for logging.
struct StepLosses {
  torch::Tensor loss;  // 0-dim total
  torch::Tensor main;  // 0-dim task loss (cross-entropy / diffusion loss)
  torch::Tensor aux;   // 0-dim MoH load-balancing term (already scaled), may be undefined
};

struct TrainLog {
  int64_t step = 0, total = 0;  // step = optimizer steps done
  double loss = 0, main = 0, aux = 0, lr = 0, grad_norm = 0, samples_per_s = 0;  // means over the log window
};

// Owns the flat parameters, AdamW and EMA of one model and runs steps; checkpoints and resumes.
class Trainer {
 public:
  // decay: which parameters get weight decay (undefined = all). The model must already be on its device.
  Trainer(torch::nn::Module& model, TrainLoopOptions options,
          std::function<bool(const std::string&, const torch::Tensor&)> decay = nullptr);
  // Loads a checkpoint written by save(); returns the step to continue from.
  int64_t resume(const std::string& path);
  // Runs steps [step(), options.steps): forward(step) builds the graph, then backward, clip, AdamW, EMA;
  // on_log every log_every steps and at the end; checkpoints per options.
  void run(const std::function<StepLosses(int64_t step)>& forward, const std::function<void(const TrainLog&)>& on_log);
  void save(const std::string& path);
  int64_t step() const { return step_; }
  int64_t total_steps() const { return options_.steps; }  // after a time-limit adjustment
  const Ema* ema() const { return ema_.get(); }
  // Weights to ship: EMA values (when kept and use_ema) or the live parameters, plus persistent buffers, under
  // the model's state_dict names.
  std::vector<std::pair<std::string, torch::Tensor>> export_weights(bool use_ema) const;
  double last_loss() const { return last_loss_; }

 private:
  torch::nn::Module& model_;
  TrainLoopOptions options_;
  std::unique_ptr<FlatParams> flat_;
  std::unique_ptr<FlatAdamW> opt_;
  std::unique_ptr<Ema> ema_;
  int64_t step_ = 0;
  double last_loss_ = 0;
};

// ---------------------------------------------------------------- options every trainer shares
// Defaults are neutral; the models/*.json "train" block and the moh-train flags set the real values.
struct TrainCommonOptions {
  std::string data_dir;          // folder with the dataset files
  int64_t steps = 1000;
  int64_t batch_size = 128;
  double lr = 1e-3, min_lr = 0.0;
  int64_t warmup = 0;
  bool cosine = true;            // false: constant lr after warm-up
  double weight_decay = 0.0;
  double clip_grad = 0.0;
  double moh_loss_coeff = 0.01;  // official value in both MoH-ViT and MoH-DiT
  double ema_decay = 0.0;        // 0 = no EMA
  uint64_t seed = 0;
  std::string device = "auto";
  int64_t log_every = 50;
  std::string out;               // exported weights (.safetensors); "" = none
  std::string ckpt;              // resume checkpoint (written at the end and every ckpt_every steps); "" = none
  int64_t ckpt_every = 0;
  std::string resume;            // checkpoint to continue from
  int64_t train_limit = 0;       // use only the first N training samples (0 = all; tests)
  double time_limit_s = 0;       // wall-clock budget of the training loop (see TrainLoopOptions), 0 = none

  nlohmann::json to_json() const;
  // Sets the fields whose names appear in j; each key used is added to `used` (callers reject leftovers).
  void update_from_json(const nlohmann::json& j, std::set<std::string>& used);
  TrainLoopOptions loop_options(const std::string& kind) const;
};
// Throws moh::Error naming every key of the object j not in `used` (typos in a "train" block).
void reject_unknown_keys(const nlohmann::json& j, const std::set<std::string>& used, const std::string& where);

// Enables TF32 matmul/conv on CUDA (train.py does the same); no-op elsewhere.
void enable_tf32();

}  // namespace moh
