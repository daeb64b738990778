// MoH-TransNeXt under the precision policy of common/runtime/precision.h (the official MoH-ViT under torch.autocast(bf16)):
// bf16 Linear/Conv weights (q, kv, qkv, proj, sr, cpb_fc1/2, fc1, dwconv, fc2, stem convs, head); fp32 LayerNorms
// (norm1, norm2, stage norms, stem norms, the pooled-key norm), fp32 router (wg, wg_0, wg_1), an fp32 residual stream,
// and fp32 attention math: the attention modules' own small tensors (temperature, query_embedding, position biases,
// learnable tokens) stay fp32 and vit/attention.cpp computes logits, softmax and the value sums in their dtype from
// the bf16 q/kv GEMM outputs — what a fused kernel with fp32 accumulators does. Unlike the official autocast, which
// rounds the cosine-attention logits (|logit| up to ~4.2 ln(L+P)) to bf16: on the tiny golden ViT that rounding alone
// moved the logits by ~18% (measured, tests/test_precision.cpp). Logits come back in the stream dtype.
#pragma once
#include "common/runtime/precision.h"
#include "vit/model.h"

namespace moh::vit {

// Moves and casts `model` (weights already loaded) for `p`; see common/runtime/precision.h.
void apply_vit_precision(TransNeXt& model, const torch::Device& device, Precision p);

}  // namespace moh::vit
