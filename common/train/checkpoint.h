// Training checkpoints (checkpoint/resume) as safetensors: model + EMA + AdamW moments, step and configs in the
// metadata (format moh-train-ckpt-v1). Plays the role of the `checkpoint` dict MoH-DiT/train.py saves with torch.save.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

#include "common/train/optim.h"

namespace moh {

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

// --init-from: starts a run from trained weights instead of the random init (fine-tuning, continue-tuning a model
// that moh-convert --to-moh made from a dense one). `path` is a weights .safetensors with the model's state_dict
// names (moh-train / moh-convert output); every parameter and persistent buffer must be there with its shape
// (strict: the error lists each missing, unexpected or mis-shaped key). A metadata "kind" other than `kind` is an
// error. Returns the file's metadata.
std::map<std::string, std::string> load_init_weights(const std::string& path, const std::string& kind,
                                                     torch::nn::Module& model);

}  // namespace moh
