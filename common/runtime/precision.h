// Precision policy: which dtype each part of a model runs in (DESIGN.md "Precision"). Mirrors what
// torch.autocast(dtype=bfloat16) gives the official SkyworkAI/MoH code (MoH-DiT/sample.py, MoH-ViT/engine.py with
// --amp): GEMMs and attention in bf16; LayerNorm, softmax, the MoH router and the residual stream in fp32.
//
//   fp32   every parameter and activation fp32 (the CPU default; bit-compatible with the goldens)
//   bf16   every parameter and activation bf16 (explicit opt-in: fastest, least accurate)
//   fp16   every parameter and activation fp16 (CUDA only)
//   mixed  "mixed bf16", the CUDA default: parameters of GEMM-class modules (Linear, Conv, attention's own small
//          tensors) in bf16, everything else (LayerNorm, router wg/wg_0/wg_1, embedding tables, position tables)
//          fp32. The models cast a tensor where it enters a GEMM-class module; type promotion keeps the residual
//          stream fp32 (fp32 x + bf16 branch = fp32). Works on the CPU too (slow bf16 GEMMs; used by the tests).
//
// Softmax note: LibTorch's bf16 softmax accumulates in fp32 (CPU and CUDA) and rounds only its output, which the
// official autocast code also rounds to bf16 before the P·V GEMM; so "softmax in fp32" holds without an fp32 copy.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

namespace moh {

enum class Precision { kFp32, kBf16, kFp16, kMixed };

// "auto" = mixed on CUDA, fp32 on the CPU; also "fp32"/"float32", "bf16"/"bfloat16", "fp16"/"float16" (CUDA
// only), "mixed"/"amp". Throws moh::Error naming the accepted values.
Precision parse_precision(const std::string& spec, const torch::Device& device);
std::string precision_to_string(Precision p);  // "fp32", "bf16", "fp16", "mixed"
// The dtype GEMMs and attention run in (bf16 for mixed).
torch::Dtype gemm_dtype(Precision p);
// The dtype of LayerNorm, router, embeddings and the residual stream (fp32 for mixed).
torch::Dtype stream_dtype(Precision p);
// The Precision that a plain dtype means (fp32 -> kFp32, bf16 -> kBf16, fp16 -> kFp16).
Precision precision_of_dtype(torch::Dtype dtype);

// Decides, per module of the tree (its dotted name, e.g. "blocks.3.attn.qkv", and the module), whether the module's
// *own* parameters (not its children's) are GEMM-class and go to gemm_dtype under kMixed.
using GemmModulePredicate = std::function<bool(const std::string& name, const torch::nn::Module& module)>;

// Moves `module` to `device` and casts it for `p`: the whole tree to gemm_dtype(p) for fp32/bf16/fp16; for kMixed
// everything to fp32, then the own parameters of each module `is_gemm` accepts to bf16. Parameters are converted in
// place (Module::to semantics), so handles to them stay valid.
void apply_precision(torch::nn::Module& module, const torch::Device& device, Precision p,
                     const GemmModulePredicate& is_gemm);

// True for the MoH router layers ("...wg", "...wg_0", "...wg_1"): they stay fp32 under kMixed.
bool is_router_module_name(const std::string& name);

// x in dtype `t` (no copy when it already is): where a tensor enters a module whose weights may be in another dtype.
inline torch::Tensor as_dtype(const torch::Tensor& x, torch::ScalarType t) {
  return x.scalar_type() == t ? x : x.to(t);
}

}  // namespace moh
