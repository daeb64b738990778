// Device and dtype policy: parse user choices ("auto", "cpu", "cuda", "cuda:1"; "auto", "fp32", "bf16", "fp16")
// into what LibTorch needs. "auto" = CUDA with bf16 when a GPU is present, CPU with fp32 otherwise.
#pragma once
#include <torch/torch.h>

#include <string>

namespace moh {

torch::Device parse_device(const std::string& spec);             // throws moh::Error on unknown/unavailable
torch::Dtype parse_dtype(const std::string& spec, const torch::Device& device);
std::string dtype_to_string(torch::Dtype t);                      // "fp32", "bf16", "fp16"
std::string device_to_string(const torch::Device& d);

}  // namespace moh
