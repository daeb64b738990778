#include "common/device.h"

#include "common/error.h"

namespace moh {

torch::Device parse_device(const std::string& spec) {
  if (spec == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    MOH_CHECK(torch::cuda::is_available(), "device ", spec,
              ": no CUDA device is available in this build/machine; use device cpu");
    int index = 0;
    if (spec.size() > 4) {
      MOH_CHECK(spec[4] == ':' && spec.size() > 5, "device '", spec, "' is not valid; use cpu, cuda or cuda:N");
      try {
        index = std::stoi(spec.substr(5));
      } catch (...) {
        throw Error("device '" + spec + "' is not valid; use cpu, cuda or cuda:N");
      }
    }
    MOH_CHECK(index >= 0 && index < (int)torch::cuda::device_count(), "device ", spec, ": only ",
              torch::cuda::device_count(), " CUDA device(s) present");
    return torch::Device(torch::kCUDA, index);
  }
  throw Error("device '" + spec + "' is not valid; use auto, cpu, cuda or cuda:N");
}

torch::Dtype parse_dtype(const std::string& spec, const torch::Device& device) {
  if (spec == "auto") return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  if (spec == "fp32" || spec == "float32") return torch::kFloat32;
  if (spec == "bf16" || spec == "bfloat16") return torch::kBFloat16;
  if (spec == "fp16" || spec == "float16") {
    MOH_CHECK(device.is_cuda(), "dtype fp16 needs a CUDA device (CPU half-precision kernels are incomplete); use fp32 or bf16");
    return torch::kFloat16;
  }
  throw Error("dtype '" + spec + "' is not valid; use auto, fp32, bf16 or fp16");
}

std::string dtype_to_string(torch::Dtype t) {
  if (t == torch::kFloat32) return "fp32";
  if (t == torch::kBFloat16) return "bf16";
  if (t == torch::kFloat16) return "fp16";
  return c10::toString(t);
}

std::string device_to_string(const torch::Device& d) { return d.str(); }

}  // namespace moh
