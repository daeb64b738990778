// MoH-DiT under the precision policy of common/runtime/precision.h (the official MoH-DiT under torch.autocast(bf16)):
// bf16 Linear/Conv weights (qkv, proj, fc1, fc2, adaLN, t_embedder MLP, final linear, patch conv); fp32 router
// (wg, wg_0, wg_1), label embedding table, pos_embed and the residual stream; LayerNorms have no parameters in DiT
// and run on the fp32 stream. The model's output is in the stream dtype (fp32 under mixed).
#pragma once
#include "common/runtime/precision.h"
#include "dit/model.h"

namespace moh::dit {

// Moves and casts `model` (weights already loaded) for `p`; see common/runtime/precision.h.
void apply_dit_precision(DiT& model, const torch::Device& device, Precision p);

}  // namespace moh::dit
