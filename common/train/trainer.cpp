// Training building blocks (see train_utils.h).
#include "common/train/trainer.h"

#include "common/runtime/interrupt.h"
#include "common/runtime/seed_mix.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"

namespace moh {

// ---------------------------------------------------------------- learning rate
double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
  if (!cosine) return base_lr;
  const int64_t span = std::max<int64_t>(total_steps - 1 - warmup_steps, 1);
  const double progress = std::min(1.0, double(step - warmup_steps) / double(span));
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

// ---------------------------------------------------------------- flat parameters
FlatParams::FlatParams(torch::nn::Module& module) {
  int64_t total = 0;
  torch::TensorOptions opts;
  for (const auto& p : module.named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    if (slots_.empty()) opts = p.value().options();
    MOH_CHECK(p.value().scalar_type() == opts.dtype().toScalarType() && p.value().device() == opts.device(),
              "FlatParams: parameter '", p.key(), "' has dtype/device ", p.value().scalar_type(), "/",
              p.value().device(), " but the first trainable one has ", opts.dtype(), "/", opts.device());
    slots_.push_back({p.key(), p.value(), total, p.value().numel()});
    total += p.value().numel();
  }
  MOH_CHECK(!slots_.empty(), "FlatParams: the model has no trainable parameters (requires_grad is off everywhere)");
  torch::NoGradGuard no_grad;
  data_ = torch::empty({total}, opts.requires_grad(false));
  grad_ = torch::zeros({total}, opts.requires_grad(false));
  for (auto& s : slots_) {
    auto view = data_.narrow(0, s.offset, s.numel).view(s.param.sizes());  // [numel] -> param shape
    view.copy_(s.param);
    s.param.set_data(view);
    s.param.mutable_grad() = grad_.narrow(0, s.offset, s.numel).view(s.param.sizes());  // [numel] -> param shape
  }
}

void FlatParams::zero_grad() {
  grad_.zero_();
  sync_grads();  // re-attach any gradient autograd replaced since the last step
}

const torch::Tensor& FlatParams::sync_grads() {
  torch::NoGradGuard no_grad;
  const auto elem = grad_.element_size();
  auto* base = static_cast<char*>(grad_.data_ptr());
  for (auto& s : slots_) {
    auto& g = s.param.mutable_grad();
    if (g.defined() && g.data_ptr() == base + s.offset * elem) continue;
    auto view = grad_.narrow(0, s.offset, s.numel).view(s.param.sizes());  // [numel] -> param shape
    if (g.defined()) view.copy_(g);
    else view.zero_();
    g = view;
  }
  return grad_;
}

std::vector<std::pair<std::string, torch::Tensor>> FlatParams::split(const torch::Tensor& flat,
                                                                     const std::string& prefix) const {
  MOH_CHECK(flat.numel() == numel(), "FlatParams::split: tensor has ", flat.numel(), " elements, expected ", numel());
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& s : slots_)
    out.emplace_back(prefix + s.name, flat.narrow(0, s.offset, s.numel).view(s.param.sizes()));  // -> param shape
  return out;
}

void FlatParams::load_into(torch::Tensor& flat, const std::map<std::string, torch::Tensor>& tensors,
                           const std::string& prefix, const std::string& source) const {
  std::vector<std::string> problems;
  for (const auto& s : slots_) {
    auto it = tensors.find(prefix + s.name);
    if (it == tensors.end()) problems.push_back("missing " + prefix + s.name);
    else if (it->second.sizes() != s.param.sizes()) problems.push_back("shape mismatch " + prefix + s.name);
  }
  if (!problems.empty()) {
    std::ostringstream os;
    os << source << " does not match the model being trained (" << problems.size() << " problems; was it written "
       << "for another config?):";
    for (size_t i = 0; i < problems.size() && i < 20; ++i) os << "\n  " << problems[i];
    throw Error(os.str());
  }
  torch::NoGradGuard no_grad;
  for (const auto& s : slots_)
    flat.narrow(0, s.offset, s.numel).copy_(tensors.at(prefix + s.name).reshape({-1}));  // [...] -> [numel]
}

torch::Tensor FlatParams::mask(const std::function<bool(const std::string&, const torch::Tensor&)>& keep) const {
  auto m = torch::zeros({numel()}, data_.options());
  for (const auto& s : slots_)
    if (keep(s.name, s.param)) m.narrow(0, s.offset, s.numel).fill_(1.0);
  return m;
}

torch::Tensor clip_grad_norm(const torch::Tensor& flat_grad, double max_norm) {
  torch::NoGradGuard no_grad;
  auto norm = flat_grad.norm();
  // No host sync: the clip factor stays on the device (a .item() per step would stall a launch-bound GPU loop).
  if (max_norm > 0) flat_grad.mul_((max_norm / (norm + 1e-6)).clamp_max(1.0));
  return norm;
}

// ---------------------------------------------------------------- optimizer
FlatAdamW::FlatAdamW(FlatParams& params, AdamWOptions options, torch::Tensor decay_mask)
    : params_(params), options_(options), decay_mask_(std::move(decay_mask)) {
  m_ = torch::zeros_like(params_.data());
  v_ = torch::zeros_like(params_.data());
  if (decay_mask_.defined())
    MOH_CHECK(decay_mask_.numel() == params_.numel(), "FlatAdamW: decay mask has ", decay_mask_.numel(),
              " elements, parameters ", params_.numel());
}

void FlatAdamW::step(double lr) {
  // torch.optim.AdamW (single-tensor path): decoupled decay, then Adam with bias correction.
  torch::NoGradGuard no_grad;
  ++t_;
  auto p = params_.data();
  const auto& g = params_.grad();
  const double wd = options_.weight_decay;
  if (wd != 0.0) {
    if (decay_mask_.defined()) p.addcmul_(p, decay_mask_, -lr * wd);
    else p.mul_(1.0 - lr * wd);
  }
  m_.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
  v_.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
  const double bc1 = 1.0 - std::pow(options_.beta1, double(t_));
  const double bc2 = 1.0 - std::pow(options_.beta2, double(t_));
  auto denom = (v_.sqrt() / std::sqrt(bc2)).add_(options_.eps);
  p.addcdiv_(m_, denom, -lr / bc1);
}

// ---------------------------------------------------------------- EMA
Ema::Ema(torch::nn::Module& module, const FlatParams& flat) : flat_(flat) {
  torch::NoGradGuard no_grad;
  flat_ema_ = flat.data().clone();
  std::set<std::string> in_flat;
  for (const auto& s : flat.slots()) in_flat.insert(s.name);
  for (const auto& p : module.named_parameters(true)) {
    if (in_flat.count(p.key())) continue;
    extra_param_.emplace_back(p.key(), p.value());
    extra_ema_.emplace_back(p.key(), p.value().detach().clone());
  }
}

void Ema::update(double decay) {
  torch::NoGradGuard no_grad;
  flat_ema_.mul_(decay).add_(flat_.data(), 1.0 - decay);
  for (size_t i = 0; i < extra_param_.size(); ++i) extra_ema_[i].second.mul_(decay).add_(extra_param_[i].second, 1.0 - decay);
}

std::vector<std::pair<std::string, torch::Tensor>> Ema::named() const {
  auto out = flat_.split(flat_ema_, "");
  out.insert(out.end(), extra_ema_.begin(), extra_ema_.end());
  return out;
}

void Ema::load(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix,
               const std::string& source) {
  flat_.load_into(flat_ema_, tensors, prefix, source);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : extra_ema_) {
    auto it = tensors.find(prefix + name);
    MOH_CHECK(it != tensors.end() && it->second.sizes() == t.sizes(), source, ": EMA tensor '", prefix, name,
              "' is missing or has the wrong shape");
    t.copy_(it->second);
  }
}

// ---------------------------------------------------------------- randomness and data order

uint64_t mix_seed(uint64_t seed, uint64_t stream, uint64_t step) {
  return splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ step);
}

torch::Generator step_generator(uint64_t seed, uint64_t stream, int64_t step) {
  return at::detail::createCPUGenerator(mix_seed(seed, stream, uint64_t(step)));
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    state = splitmix64(state);
    // Lemire's multiply-shift maps the 64-bit draw to [0, i] (bias < 2^-40 for any dataset size here).
    const auto j = int64_t((static_cast<unsigned __int128>(state) * uint64_t(i + 1)) >> 64);
    std::swap(p[size_t(i)], p[size_t(j)]);
  }
  return p;
}

EpochSampler::EpochSampler(int64_t n, int64_t batch_size, uint64_t seed) : n_(n), batch_(batch_size), seed_(seed) {
  MOH_CHECK(batch_size > 0, "batch size must be positive (got ", batch_size, ")");
  MOH_CHECK(n >= batch_size, "the dataset has ", n, " samples, fewer than one batch of ", batch_size,
            "; lower the batch size");
}

torch::Tensor EpochSampler::indices(int64_t step) {
  const int64_t epoch = step / steps_per_epoch(), pos = step % steps_per_epoch();
  if (epoch != cached_epoch_) {
    perm_ = seeded_permutation(n_, mix_seed(seed_, 0x5A3D1E, uint64_t(epoch)));
    cached_epoch_ = epoch;
  }
  return torch::tensor(std::vector<int64_t>(perm_.begin() + pos * batch_, perm_.begin() + (pos + 1) * batch_),
                       torch::kLong);
}

// ---------------------------------------------------------------- checkpoints
namespace {
constexpr const char* kCkptFormat = "moh-train-ckpt-v1";
}

void save_train_checkpoint(const std::string& path, torch::nn::Module& model, const FlatParams& flat, FlatAdamW& opt,
                           const Ema* ema, int64_t step, std::map<std::string, std::string> metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& [name, t] : state_dict(model)) tensors.emplace_back("model." + name, t);
  if (ema)
    for (auto& [name, t] : ema->named()) tensors.emplace_back("ema." + name, t);
  for (auto& nt : flat.split(opt.exp_avg(), "opt.exp_avg.")) tensors.push_back(nt);
  for (auto& nt : flat.split(opt.exp_avg_sq(), "opt.exp_avg_sq.")) tensors.push_back(nt);
  metadata["format"] = kCkptFormat;
  metadata["step"] = std::to_string(step);
  metadata["adam_steps"] = std::to_string(opt.steps_taken());
  metadata["has_ema"] = ema ? "1" : "0";
  write_safetensors(path, tensors, metadata);
}

int64_t load_train_checkpoint(const std::string& path, const std::string& kind, torch::nn::Module& model,
                              FlatParams& flat, FlatAdamW& opt, Ema* ema, std::map<std::string, std::string>* metadata) {
  SafetensorsFile f(path);
  MOH_CHECK(f.meta("format") == kCkptFormat, "'", path, "' is not a moh-train checkpoint (metadata format '",
            f.meta("format"), "', expected '", kCkptFormat, "'); pass the .ckpt.safetensors file moh-train wrote");
  MOH_CHECK(f.meta("kind") == kind, "'", path, "' is a checkpoint of a '", f.meta("kind"), "' model, not '", kind, "'");
  std::map<std::string, torch::Tensor> all;
  for (const auto& n : f.names()) all[n] = f.tensor(n);
  LoadOptions lo;
  lo.source = "'" + path + "'";
  std::map<std::string, torch::Tensor> model_tensors;
  for (const auto& [n, t] : all)
    if (n.rfind("model.", 0) == 0) model_tensors[n.substr(6)] = t;
  load_state_dict(model, model_tensors, lo);  // copies into the (flat-bound) parameters in place
  flat.load_into(opt.exp_avg(), all, "opt.exp_avg.", lo.source);
  flat.load_into(opt.exp_avg_sq(), all, "opt.exp_avg_sq.", lo.source);
  opt.set_steps_taken(std::stoll(f.meta("adam_steps", "0")));
  if (ema) {
    if (f.meta("has_ema") == "1") ema->load(all, "ema.", lo.source);
    else throw Error("'" + path + "' holds no EMA weights but this run keeps an EMA");
  }
  if (metadata) *metadata = f.metadata();
  return std::stoll(f.meta("step", "0"));
}

// ---------------------------------------------------------------- the shared training loop
Trainer::Trainer(torch::nn::Module& model, TrainLoopOptions options,
                 std::function<bool(const std::string&, const torch::Tensor&)> decay)
    : model_(model), options_(std::move(options)) {
  MOH_CHECK(options_.steps > 0, "steps must be positive (got ", options_.steps, ")");
  MOH_CHECK(options_.log_every > 0, "log_every must be positive (got ", options_.log_every, ")");
  flat_ = std::make_unique<FlatParams>(model_);
  opt_ = std::make_unique<FlatAdamW>(*flat_, options_.adamw, decay ? flat_->mask(decay) : torch::Tensor());
  if (options_.ema_decay > 0) ema_ = std::make_unique<Ema>(model_, *flat_);
}

int64_t Trainer::resume(const std::string& path) {
  step_ = load_train_checkpoint(path, options_.kind, model_, *flat_, *opt_, ema_.get());
  MOH_CHECK(step_ <= options_.steps, "'", path, "' is at step ", step_, ", beyond the step count ", options_.steps,
            "; raise the step count to train further");
  return step_;
}

void Trainer::save(const std::string& path) {
  save_train_checkpoint(path, model_, *flat_, *opt_, ema_.get(), step_, options_.ckpt_metadata);
}

double ema_decay_at(double decay, int64_t updates) {
  const double n = double(std::max<int64_t>(updates, 0));
  return std::min(decay, (1.0 + n) / (10.0 + n));
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
  const auto run_start = t0;
  const int64_t first_step = step_;
  // Time budget: measure steps first+10 .. first+40 (the first ones include allocator / autotuning warm-up).
  constexpr int64_t kCalibFrom = 10, kCalibTo = 40;
  std::chrono::steady_clock::time_point calib_start;
  while (step_ < options_.steps) {
    if (options_.time_limit_s > 0 && step_ - first_step == kCalibFrom) {
      sum_loss.item<double>();  // sync: the queue is drained before timing
      calib_start = std::chrono::steady_clock::now();
    }
    if (options_.time_limit_s > 0 && step_ - first_step == kCalibTo) {
      sum_loss.item<double>();
      const auto now = std::chrono::steady_clock::now();
      const double per_step = std::chrono::duration<double>(now - calib_start).count() / double(kCalibTo - kCalibFrom);
      const double left = options_.time_limit_s - std::chrono::duration<double>(now - run_start).count();
      const int64_t fit = step_ + std::max<int64_t>(1, int64_t(0.95 * left / std::max(per_step, 1e-9)));
      if (fit < options_.steps) {
        options_.steps = fit;
        options_.lr.total_steps = fit;  // warm-up is over or unaffected; the cosine now ends at `fit`
      }
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
          {"train_limit", train_limit}, {"time_limit_s", time_limit_s}};
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
