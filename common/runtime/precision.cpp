// Precision policy (see common/runtime/precision.h).
#include "common/runtime/precision.h"

#include "common/error.h"

namespace moh {

Precision parse_precision(const std::string& spec, const torch::Device& device) {
  if (spec == "auto") return device.is_cuda() ? Precision::kMixed : Precision::kFp32;
  if (spec == "mixed" || spec == "amp") return Precision::kMixed;
  if (spec == "fp32" || spec == "float32") return Precision::kFp32;
  if (spec == "bf16" || spec == "bfloat16") return Precision::kBf16;
  if (spec == "fp16" || spec == "float16") {
    MOH_CHECK(device.is_cuda(), "dtype fp16 needs a CUDA device (CPU half-precision kernels are incomplete); use "
              "fp32, mixed or bf16");
    return Precision::kFp16;
  }
  throw Error("dtype '" + spec + "' is not valid; use auto, fp32, mixed, bf16 or fp16");
}

std::string precision_to_string(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    case Precision::kMixed: return "mixed";
  }
  return "?";
}

torch::Dtype gemm_dtype(Precision p) {
  switch (p) {
    case Precision::kFp32: return torch::kFloat32;
    case Precision::kFp16: return torch::kFloat16;
    case Precision::kBf16:
    case Precision::kMixed: return torch::kBFloat16;
  }
  return torch::kFloat32;
}

torch::Dtype stream_dtype(Precision p) { return p == Precision::kMixed ? torch::kFloat32 : gemm_dtype(p); }

Precision precision_of_dtype(torch::Dtype dtype) {
  if (dtype == torch::kFloat32) return Precision::kFp32;
  if (dtype == torch::kBFloat16) return Precision::kBf16;
  if (dtype == torch::kFloat16) return Precision::kFp16;
  throw Error(std::string("no precision policy for dtype ") + c10::toString(dtype) + "; use fp32, bf16 or fp16");
}

bool is_router_module_name(const std::string& name) {
  const auto dot = name.rfind('.');
  const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  return last == "wg" || last == "wg_0" || last == "wg_1";
}

void apply_precision(torch::nn::Module& module, const torch::Device& device, Precision p,
                     const GemmModulePredicate& is_gemm) {
  if (p != Precision::kMixed) {
    module.to(device, gemm_dtype(p));
    return;
  }
  module.to(device, torch::kFloat32);
  torch::NoGradGuard no_grad;
  for (const auto& item : module.named_modules()) {
    const torch::nn::Module& m = *item.value();
    if (!is_gemm(item.key(), m)) continue;
    // Own parameters only; set_data keeps every handle (e.g. a Linear's `weight` member) pointing at the new data.
    for (auto& param : item.value()->named_parameters(/*recurse=*/false)) {
      auto& t = param.value();
      if (t.is_floating_point()) t.set_data(t.to(torch::kBFloat16));
    }
  }
}

}  // namespace moh
