// CPU GEMMs of the Linear layers through oneDNN's matmul (Debian's libdnnl-dev): code generated at run time for the
// CPU it runs on (AVX2, AVX-512, AVX512_BF16, AMX), weights reordered once into the kernel's packed layout and
// kept, bias and GELU fused into the GEMM. Stands in for torch::linear (nn.Linear in the official MoH-ViT/MoH-DiT
// code); LibTorch's ops stay the reference in tests (tests/test_cpu_gemm.cpp).
//
// Why: LibTorch's CPU GEMM is OpenBLAS's sgemm, whose speed depends on which kernel an environment picks
// (OPENBLAS_CORETYPE=Haswell on an AVX-512 machine halves it) and which re-packs the weights on every call.
//
// When it applies: CPU tensors, weight fp32 or bf16 (the input is cast to the weight's dtype, the output has the
// weight's dtype), no autograd (grad mode off, or neither tensor requires grad). Anything else, a build without
// oneDNN, or MOH_CPU_GEMM=torch in the environment: torch::linear (+ torch::gelu) does the same computation.
//
// Packed weights are cached per weight tensor (its storage, offset, shape and version counter: an in-place update
// such as an optimizer step is seen), held weakly: a weight that is freed drops its packed copy. The packed copies
// cost one more copy of the Linear weights in memory (MoH-ViT-S-80: peak RSS of moh-classify at batch 1 642 MiB
// instead of 449); MOH_CPU_GEMM_PACK=0 runs oneDNN on the weights as they are (458 MiB; about 10 % slower DiT GEMMs).
#pragma once
#include <torch/torch.h>

namespace moh::cpu_gemm {

enum class Epilogue { kNone, kGeluTanh, kGeluErf };

// y = epilogue(x W^T + b); x: [..., in], w: [out, in], b: [out] or undefined -> [..., out] in w's dtype.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                     Epilogue epilogue = Epilogue::kNone);

// The same computation through LibTorch's ops (the reference and the fallback).
torch::Tensor torch_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                           Epilogue epilogue = Epilogue::kNone);

// Whether linear() would take the oneDNN path for these tensors.
bool uses_onednn(const torch::Tensor& x, const torch::Tensor& w);

// Build has oneDNN and MOH_CPU_GEMM is not "torch"; set_enabled overrides (tests, benchmarks).
bool enabled();
void set_enabled(bool on);

// "oneDNN 2.6.3 (cpu isa: ...)" or why it is off; for --version / benchmark records.
std::string describe();

// Multiply-add FLOPs (2 * rows * in * out) of every linear() call since the program started, on any path: the
// benchmarks' "GFLOP/s" (moh-bench) is this count per forward over its time.
uint64_t linear_flops();

// Whether weights are packed (MOH_CPU_GEMM_PACK is not "0"; read once).
bool packs_weights();

// Packed weights currently cached (tests: a freed weight's pack is dropped).
size_t cached_weight_count();

}  // namespace moh::cpu_gemm
