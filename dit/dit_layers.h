// Small building blocks of the MoH-DiT modules that torch::nn does not offer in the needed form.
// `Linear` is nn.Linear with the official parameter names (weight [out, in], bias [out]) but WITHOUT random
// initialisation: DiT weights always come from a checkpoint, and skipping the init makes building an XL
// model (675 M parameters) instant and lets untouched pages stay unallocated (manifest tests, loaders).
#pragma once
#include <torch/torch.h>

#include "common/cpu_gemm/onednn_linear.h"

namespace moh::dit {

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  // x: [..., in] -> [..., out] in the weight's dtype; x is cast to it when they differ (mixed precision,
  // common/runtime/precision.h: fp32 stream, bf16 GEMM weights). CPU GEMMs through oneDNN (common/cpu_gemm/).
  torch::Tensor forward(const torch::Tensor& x) { return cpu_gemm::linear(x, weight, bias); }
  // The same with an activation fused into the GEMM where oneDNN runs it (not forward(): Sequential calls that one).
  torch::Tensor forward_then(const torch::Tensor& x, cpu_gemm::Epilogue epilogue) {
    return cpu_gemm::linear(x, weight, bias, epilogue);
  }
  torch::Tensor weight, bias;  // bias undefined when bias=false
};
TORCH_MODULE(Linear);

// GELU, tanh approximation (timm Mlp's nn.GELU(approximate="tanh")): y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715
// x^3))). CPU float32 contiguous tensors without autograd are overwritten in place by one vectorised pass (tanh via
// the exp of common/runtime/cpu_simd.h, within a few ulp of torch::gelu); anything else returns torch::gelu(x, "tanh").
torch::Tensor gelu_tanh_inference(torch::Tensor x);

// Fills every floating-point parameter of `module` with N(0, std) (std = clamp(1/sqrt(fan_in), 0.02, 0.2)
// for >= 2-D tensors, 0.05 for 1-D) from a seeded generator: random but well-scaled weights for benchmarks
// and tests that need a model without a checkpoint. Parameters named "pos_embed" are left untouched.
void init_random_weights(torch::nn::Module& module, uint64_t seed);

}  // namespace moh::dit
