// Fused CPU fp32 inference kernel for TransNeXt's aggregated pixel-focused attention with MoH gates: the core of
// SkyworkAI/MoH MoH-ViT/attention_native.py `AggregatedAttention.forward` from the projected q / kv onwards
// (sliding ws x ws window + pooled keys in one softmax, learnable tokens, position biases, gate per head), computed
// per pixel without materialising the unfolded [B, h, N, d, L] windows. Formulas: spec/moh-vit.md §3.5. Routed
// heads whose gate is exactly 0 for a pixel are skipped (their output is 0, as 0 * finite is in the reference).
// No autograd: callers use it only when gradients are off (vit/attention.cpp keeps the LibTorch path otherwise).
#pragma once
#include <torch/torch.h>

#include "vit/aggregated_attention_inputs.h"

namespace moh::vit {


// True when the fused CPU path can take x: CPU, float32 or bfloat16 (mixed precision: AggregatedAttention's
// forward_fused_cpu hands the kernel fp32 inputs), and x needs no gradient (callers also check their parameters
// and that x has their GEMM weights' dtype).
bool aggregated_attention_cpu_applicable(const torch::Tensor& x);

// Returns the gated per-head outputs written head-major as [B, N, C] (the input of `proj`).
torch::Tensor aggregated_attention_cpu(const AggregatedAttentionInputs& in);

}  // namespace moh::vit
