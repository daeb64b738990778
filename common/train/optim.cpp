// Learning-rate schedule, flat parameters, AdamW, clipping and EMA (see optim.h).
#include "common/train/optim.h"

#include <cmath>

#include "common/error.h"

namespace moh {

// ---------------------------------------------------------------- learning rate
double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
  if (!cosine) return base_lr;
  const bool anchored = anchor_step >= 0 && step >= anchor_step;
  const int64_t start = anchored ? anchor_step : warmup_steps;
  const double top = anchored ? anchor_lr : base_lr;
  const int64_t span = std::max<int64_t>(total_steps - 1 - start, 1);
  const double progress = std::min(1.0, double(step - start) / double(span));
  return min_lr + 0.5 * (top - min_lr) * (1.0 + std::cos(M_PI * progress));
}

void LrSchedule::retarget(int64_t step, int64_t new_total) {
  MOH_CHECK(new_total > step, "internal error: schedule re-targeted to end at ", new_total, " before step ", step);
  if (cosine && step > warmup_steps) {
    anchor_lr = at(step);
    anchor_step = step;
  }
  total_steps = new_total;
}

nlohmann::json LrSchedule::to_json() const {
  return {{"base_lr", base_lr},       {"min_lr", min_lr}, {"warmup_steps", warmup_steps},
          {"total_steps", total_steps}, {"cosine", cosine}, {"anchor_step", anchor_step}, {"anchor_lr", anchor_lr}};
}

LrSchedule LrSchedule::from_json(const nlohmann::json& j) {
  LrSchedule s;
  s.base_lr = j.at("base_lr").get<double>();
  s.min_lr = j.at("min_lr").get<double>();
  s.warmup_steps = j.at("warmup_steps").get<int64_t>();
  s.total_steps = j.at("total_steps").get<int64_t>();
  s.cosine = j.at("cosine").get<bool>();
  s.anchor_step = j.at("anchor_step").get<int64_t>();
  s.anchor_lr = j.at("anchor_lr").get<double>();
  return s;
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

double ema_decay_at(double decay, int64_t updates) {
  const double n = double(std::max<int64_t>(updates, 0));
  return std::min(decay, (1.0 + n) / (10.0 + n));
}

}  // namespace moh
