// Training checkpoints as safetensors (see checkpoint.h).
#include "common/train/checkpoint.h"

#include "common/error.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"

namespace moh {

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

// ---------------------------------------------------------------- --init-from
std::map<std::string, std::string> load_init_weights(const std::string& path, const std::string& kind,
                                                     torch::nn::Module& model) {
  SafetensorsFile file(path);
  const auto& meta = file.metadata();
  MOH_CHECK(meta.count("format") == 0 || meta.at("format") != kCkptFormat, "--init-from '", path,
            "' is a training checkpoint; pass it to --resume to continue that run, or give the exported weights "
            "(the --out file) to start a new run from them");
  if (meta.count("kind"))
    MOH_CHECK(meta.at("kind") == kind, "--init-from '", path, "' holds a '", meta.at("kind"), "' model, not '",
              kind, "'");
  LoadOptions lo;
  lo.source = "--init-from '" + path + "' (its architecture must match --config; a dense model is converted to "
              "MoH first with moh-convert --to-moh)";
  load_safetensors_into(model, file, lo);
  return meta;
}

}  // namespace moh
