// Device and dtype policy: user choices -> torch::Device / ScalarType (see device.h). No official counterpart.
#include "common/runtime/device.h"

#include "common/error.h"
#include "common/runtime/precision.h"

namespace moh {

torch::Device parse_device(const std::string& spec) {
  if (spec == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    MOH_CHECK(torch::cuda::is_available(), "device ", spec,
              ": no CUDA device is available in this build/machine; use the CPU (device cpu)");
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
  // One parser (common/runtime/precision.h); a plain dtype is every policy but mixed. "auto" here: bf16 on CUDA.
  const Precision p = parse_precision(spec == "auto" ? std::string(device.is_cuda() ? "bf16" : "fp32") : spec, device);
  MOH_CHECK(p != Precision::kMixed, "dtype '", spec, "' is a precision policy, not one dtype; use fp32, bf16 or fp16");
  return gemm_dtype(p);
}

std::string dtype_to_string(torch::Dtype t) {
  if (t == torch::kFloat32) return "fp32";
  if (t == torch::kBFloat16) return "bf16";
  if (t == torch::kFloat16) return "fp16";
  return c10::toString(t);
}

std::string device_to_string(const torch::Device& d) { return d.str(); }

}  // namespace moh
