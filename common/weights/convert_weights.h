// Weights conversion: any weights file WeightsFile reads (a PyTorch checkpoint through the restricted unpickler, or
// safetensors) -> a safetensors file with the official key names, streamed tensor by tensor so memory stays flat,
// written atomically. The metadata records the source (name, sha256, format, entry used), the dtype policy and
// the training `args` when present. No official counterpart (the official code loads .pth with torch.load).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace moh {

struct ConvertOptions {
  std::string input, output;
  std::string key;                       // checkpoint entry holding the weights ("" = ema, model, state_dict, top)
  std::optional<torch::Dtype> dtype;     // cast floating-point tensors to this (empty: keep)
  std::string dtype_name;                // recorded in the metadata ("fp16", ...; "" = keep)
  std::map<std::string, std::string> metadata;  // extra entries (e.g. "kind" + "config" of a model preset)
};

struct ConvertResult {
  int64_t tensors = 0;
  uint64_t data_bytes = 0;
  std::string source_description;  // what was read (format, entry)
};

// "keep" -> empty, "fp32" / "fp16" / "bf16" -> that dtype; throws moh::Error for anything else.
std::optional<torch::Dtype> parse_convert_dtype(const std::string& spec);

ConvertResult convert_to_safetensors(const ConvertOptions& o);

}  // namespace moh
