// The training loop shared by vit/train and dit/train (the parts of SkyworkAI/MoH MoH-DiT/train.py and
// MoH-ViT/main.py + engine.py that are not model-specific): Trainer owns the flat parameters, AdamW and EMA of one
// model, runs steps, logs, checkpoints and resumes; TrainCommonOptions are the "train" options every trainer shares.
// Includes the pieces it is built from, so a trainer needs this one header: common/train/optim.h (schedule, flat
// parameters, AdamW, EMA), common/train/data_order.h (seeded batches and generators), common/train/checkpoint.h.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/train/checkpoint.h"
#include "common/train/data_order.h"
#include "common/train/optim.h"

namespace moh {

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
  // > 0: wall-clock budget of run() in seconds. From step 40 of the run on, the speed measured over the last 30
  // steps re-fits the step count every 30 steps (never more than `steps`) and the cosine is re-targeted from the
  // current lr to end there (LrSchedule::retarget: no jump), so the run ends with a decayed lr instead of being
  // killed mid-schedule, also when the machine's load changes. The step count then depends on the machine's speed.
  double time_limit_s = 0;
  // The clock of the time budget in seconds; empty = std::chrono::steady_clock. Tests inject a simulated one.
  std::function<double()> clock_s;
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
  const LrSchedule& schedule() const { return options_.lr; }
  // The step count that fits seconds_left at seconds_per_step (5 % kept in reserve), at least one more step, at
  // most the requested count.
  int64_t fit_steps(double seconds_per_step, double seconds_left) const;
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
  int64_t requested_steps_ = 0;  // options.steps as asked for, before any time-limit fit
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
  std::string init_from;         // weights to start from instead of the random init (see load_init_weights)
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
