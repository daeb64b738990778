// Dense -> MoH conversion of a model's attention layers (the MoH paper's continue-tuning, §4.4: a pre-trained
// multi-head attention model becomes a MoH model and is tuned further; the paper publishes no conversion code).
// The dense weights are kept as they are; each attention layer gains the router layers its MoH gate configuration
// creates (spec/moh-attention.md §1), initialised so that the converted model starts close to the dense one:
//   wg_1 = 0, wg_0 = 0  -> every shared head has gate exactly 1 and the shared/routed mix is 1:1;
//   wg ~ N(0, std^2)    -> each token keeps routed_head of the E routed candidates, chosen by small random logits
//                          (std 0.02: the official Linear init) so the choice is token-dependent from the start
//                          and ties cannot occur; the kept gates sum to routed_head and are near 1 each (exactly 1
//                          when routed_head is 1).
// The converted model therefore differs from the dense one only by the routed heads each token drops.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/moh/gates.h"

namespace moh {

// One attention layer of the target MoH model: its state_dict prefix ("block2.0.attn", "blocks.5.attn") and gates.
struct AttentionLayerGates {
  std::string prefix;
  MoHGateConfig gates;
};

// The dense tensors plus the router tensors of every layer (in the official order: after the layer's proj), the
// width C read from "<prefix>.proj.weight" ([C, h*d]). Throws moh::Error naming the problem when the dense weights
// already hold router keys, miss a layer's proj, or a layer is itself dense. `seed` draws wg.
std::vector<std::pair<std::string, torch::Tensor>> add_router_layers(
    const std::vector<std::pair<std::string, torch::Tensor>>& dense, const std::vector<AttentionLayerGates>& layers,
    uint64_t seed, double wg_std = 0.02);

}  // namespace moh
