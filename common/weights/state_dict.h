// Strict weight loading into a torch::nn::Module by exact state_dict name.
// Every missing key, unexpected key and shape mismatch is collected and reported in one error.
#pragma once
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace moh {

class SafetensorsFile;

struct LoadOptions {
  // Substring renames applied to checkpoint keys before lookup (one list per checkpoint dialect), in order.
  std::vector<std::pair<std::string, std::string>> renames;
  // Checkpoint keys starting with one of these are skipped (e.g. "encoder." for a VAE used only to decode).
  std::vector<std::string> ignore_prefixes;
  // Prefix stripped from checkpoint keys when present (e.g. "module.", "first_stage_model.").
  std::vector<std::string> strip_prefixes;
  // Target dtype of floating-point parameters (integer tensors keep theirs). Unset: keep the module's dtype.
  std::optional<torch::Dtype> dtype;
  // When true, shape mismatches whose element counts agree are reshaped (ldm 1x1 conv -> Linear).
  bool reshape_same_numel = false;
  // Used in error messages.
  std::string source = "checkpoint";
};

// Copies `tensors` into the module's parameters and buffers. Throws moh::Error listing all problems.
void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                     const LoadOptions& options = {});

// Reads every tensor of a safetensors file (after renames/ignores) and loads it strictly.
void load_safetensors_into(torch::nn::Module& module, const SafetensorsFile& file, LoadOptions options = {});

// All named parameters and buffers of a module as (name, tensor), in registration order.
std::vector<std::pair<std::string, torch::Tensor>> state_dict(const torch::nn::Module& module);

}  // namespace moh
