// The shared training loop and options (see trainer.h).
#include "common/train/trainer.h"

#include <chrono>
#include <cmath>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/runtime/interrupt.h"
#include "common/weights/state_dict.h"

namespace moh {

// ---------------------------------------------------------------- the shared training loop
Trainer::Trainer(torch::nn::Module& model, TrainLoopOptions options,
                 std::function<bool(const std::string&, const torch::Tensor&)> decay)
    : model_(model), options_(std::move(options)), requested_steps_(options_.steps) {
  MOH_CHECK(options_.steps > 0, "steps must be positive (got ", options_.steps, ")");
  MOH_CHECK(options_.log_every > 0, "log_every must be positive (got ", options_.log_every, ")");
  flat_ = std::make_unique<FlatParams>(model_);
  opt_ = std::make_unique<FlatAdamW>(*flat_, options_.adamw, decay ? flat_->mask(decay) : torch::Tensor());
  if (options_.ema_decay > 0) ema_ = std::make_unique<Ema>(model_, *flat_);
}

int64_t Trainer::resume(const std::string& path) {
  std::map<std::string, std::string> meta;
  step_ = load_train_checkpoint(path, options_.kind, model_, *flat_, *opt_, ema_.get(), &meta);
  MOH_CHECK(step_ <= options_.steps, "'", path, "' is at step ", step_, ", beyond the step count ", options_.steps,
            "; raise the step count to train further");
  // The schedule continues where the checkpoint's left it: same peak, floor and warm-up as now requested, the
  // stored total and anchor; a different step count re-targets it from the current lr (no jump up or down).
  const auto it = meta.find("lr_schedule");
  if (it != meta.end() && step_ < options_.steps) {
    LrSchedule saved;
    try {
      saved = LrSchedule::from_json(nlohmann::json::parse(it->second));
    } catch (const std::exception& e) {
      throw Error("'" + path + "' has an unreadable lr_schedule entry (" + e.what() + ")");
    }
    const bool same_shape = saved.base_lr == options_.lr.base_lr && saved.min_lr == options_.lr.min_lr &&
                            saved.warmup_steps == options_.lr.warmup_steps && saved.cosine == options_.lr.cosine;
    if (same_shape) {
      const int64_t requested = options_.lr.total_steps;
      options_.lr = saved;
      if (saved.total_steps != requested) options_.lr.retarget(step_, requested);
    }
  }
  return step_;
}

void Trainer::save(const std::string& path) {
  auto meta = options_.ckpt_metadata;
  meta["lr_schedule"] = options_.lr.to_json().dump();
  save_train_checkpoint(path, model_, *flat_, *opt_, ema_.get(), step_, meta);
}

int64_t Trainer::fit_steps(double seconds_per_step, double seconds_left) const {
  const int64_t fit = step_ + std::max<int64_t>(1, int64_t(0.95 * seconds_left / std::max(seconds_per_step, 1e-9)));
  return std::min(fit, requested_steps_);
}

void Trainer::run(const std::function<StepLosses(int64_t step)>& forward,
                  const std::function<void(const TrainLog&)>& on_log) {
  model_.train();
  const auto dev = flat_->data().device();
  auto zeros = [&] { return torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(dev)); };
  // Window sums stay on the device: one host sync per log line, not per step.
  torch::Tensor sum_loss = zeros(), sum_main = zeros(), sum_aux = zeros(), sum_gnorm = zeros();
  double sum_lr = 0;
  int64_t window = 0;
  auto t0 = std::chrono::steady_clock::now();
  const int64_t first_step = step_;
  // Time budget: the speed is measured over the steps since the last fit (the first kCalibFrom steps include
  // allocator / autotuning warm-up) and the step count re-fitted every kRefitEvery steps, so a change of machine
  // load moves the end of the run; the cosine is re-targeted from the current lr each time (never a jump).
  constexpr int64_t kCalibFrom = 10, kRefitEvery = 30;
  const auto clock = [&] {
    return options_.clock_s ? options_.clock_s()
                            : std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  const double budget_start = clock();
  double window_start = 0;
  int64_t window_first = -1;
  while (step_ < options_.steps) {
    if (options_.time_limit_s > 0 && step_ - first_step >= kCalibFrom &&
        (window_first < 0 || step_ - window_first >= kRefitEvery)) {
      sum_loss.item<double>();  // sync: the queue is drained before timing
      const double now = clock();
      if (window_first >= 0) {
        const double per_step = (now - window_start) / double(step_ - window_first);
        const double left = options_.time_limit_s - (now - budget_start);
        const int64_t fit = fit_steps(per_step, left);
        // Small moves are left alone (timer noise); a real change of speed moves the end.
        if (std::abs(double(fit - options_.steps)) > std::max(2.0, 0.02 * double(options_.steps))) {
          options_.steps = fit;
          options_.lr.retarget(step_, fit);
        }
      }
      window_start = now;
      window_first = step_;
    }
    throw_if_interrupted();  // Ctrl-C / SIGTERM: stop between steps (the last checkpoint stays valid)
    const double lr = options_.lr.at(step_);
    flat_->zero_grad();
    StepLosses l = forward(step_);
    l.loss.backward();
    flat_->sync_grads();
    auto gnorm = clip_grad_norm(flat_->grad(), options_.clip_grad);
    opt_->step(lr);
    if (ema_) ema_->update(ema_decay_at(options_.ema_decay, step_));
    ++step_;
    {
      torch::NoGradGuard no_grad;
      sum_loss += l.loss.detach().to(torch::kFloat32);
      sum_main += (l.main.defined() ? l.main : l.loss).detach().to(torch::kFloat32);
      if (l.aux.defined()) sum_aux += l.aux.detach().to(torch::kFloat32);
      sum_gnorm += gnorm.to(torch::kFloat32);
    }
    sum_lr += lr;
    ++window;
    if (step_ % options_.log_every == 0 || step_ == options_.steps) {
      TrainLog log;
      log.step = step_;
      log.total = options_.steps;
      log.loss = sum_loss.item<double>() / window;  // syncs the device
      log.main = sum_main.item<double>() / window;
      log.aux = sum_aux.item<double>() / window;
      log.grad_norm = sum_gnorm.item<double>() / window;
      log.lr = sum_lr / window;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      log.samples_per_s = secs > 0 ? double(window * options_.batch_size) / secs : 0.0;
      MOH_CHECK(std::isfinite(log.loss), "training diverged: loss is ", log.loss, " at step ", step_,
                "; lower the learning rate or lengthen the warm-up");
      last_loss_ = log.loss;
      if (on_log) on_log(log);
      sum_loss = zeros(), sum_main = zeros(), sum_aux = zeros(), sum_gnorm = zeros();
      sum_lr = 0;
      window = 0;
      t0 = std::chrono::steady_clock::now();
    }
    if (!options_.ckpt_path.empty() && options_.ckpt_every > 0 && step_ % options_.ckpt_every == 0 &&
        step_ < options_.steps)
      save(options_.ckpt_path);
  }
  if (!options_.ckpt_path.empty()) save(options_.ckpt_path);
  model_.eval();
}

std::vector<std::pair<std::string, torch::Tensor>> Trainer::export_weights(bool use_ema) const {
  if (!(ema_ && use_ema)) return state_dict(model_);
  auto out = ema_->named();
  for (const auto& b : model_.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

// ---------------------------------------------------------------- options every trainer shares
namespace {
template <typename T>
void take(const nlohmann::json& j, const char* key, T& field, std::set<std::string>& used) {
  if (!j.contains(key)) return;
  try {
    field = j.at(key).get<T>();
  } catch (const std::exception& e) {
    throw Error(std::string("training option '") + key + "' has the wrong type: " + e.what());
  }
  used.insert(key);
}
}  // namespace

nlohmann::json TrainCommonOptions::to_json() const {
  return {{"data_dir", data_dir}, {"steps", steps}, {"batch_size", batch_size}, {"lr", lr}, {"min_lr", min_lr},
          {"warmup", warmup}, {"cosine", cosine}, {"weight_decay", weight_decay}, {"clip_grad", clip_grad},
          {"moh_loss_coeff", moh_loss_coeff}, {"ema_decay", ema_decay}, {"seed", seed}, {"device", device},
          {"log_every", log_every}, {"out", out}, {"ckpt", ckpt}, {"ckpt_every", ckpt_every}, {"resume", resume},
          {"init_from", init_from}, {"train_limit", train_limit}, {"time_limit_s", time_limit_s}};
}

void TrainCommonOptions::update_from_json(const nlohmann::json& j, std::set<std::string>& used) {
  take(j, "data_dir", data_dir, used);
  take(j, "steps", steps, used);
  take(j, "batch_size", batch_size, used);
  take(j, "lr", lr, used);
  take(j, "min_lr", min_lr, used);
  take(j, "warmup", warmup, used);
  take(j, "cosine", cosine, used);
  take(j, "weight_decay", weight_decay, used);
  take(j, "clip_grad", clip_grad, used);
  take(j, "moh_loss_coeff", moh_loss_coeff, used);
  take(j, "ema_decay", ema_decay, used);
  take(j, "seed", seed, used);
  take(j, "device", device, used);
  take(j, "log_every", log_every, used);
  take(j, "out", out, used);
  take(j, "ckpt", ckpt, used);
  take(j, "ckpt_every", ckpt_every, used);
  take(j, "resume", resume, used);
  take(j, "init_from", init_from, used);
  take(j, "train_limit", train_limit, used);
  take(j, "time_limit_s", time_limit_s, used);
}

TrainLoopOptions TrainCommonOptions::loop_options(const std::string& kind) const {
  MOH_CHECK(batch_size > 0, "batch size must be positive (got ", batch_size, ")");
  MOH_CHECK(lr > 0, "learning rate must be positive (got ", lr, ")");
  MOH_CHECK(ema_decay >= 0 && ema_decay < 1, "EMA decay must be in [0, 1) (got ", ema_decay, ")");
  TrainLoopOptions o;
  o.kind = kind;
  o.steps = steps;
  o.batch_size = batch_size;
  o.lr = LrSchedule{lr, min_lr, warmup, steps, cosine};
  o.adamw.weight_decay = weight_decay;
  o.clip_grad = clip_grad;
  o.ema_decay = ema_decay;
  o.log_every = log_every;
  o.ckpt_path = ckpt;
  o.ckpt_every = ckpt_every;
  o.time_limit_s = time_limit_s;
  return o;
}

void reject_unknown_keys(const nlohmann::json& j, const std::set<std::string>& used, const std::string& where) {
  std::string bad;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!used.count(it.key())) bad += (bad.empty() ? "" : ", ") + it.key();
  MOH_CHECK(bad.empty(), where, ": unknown training option(s) ", bad);
}

void enable_tf32() {
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
}

}  // namespace moh
