// Parity runners for the MoH-DiT families of reference files (dit_attn, dit_model, dit_sampler, vae).
#pragma once
#include <map>
#include <string>

#include "parity/parity.h"

namespace moh::dit {
std::map<std::string, ParityRunner> parity_runners();

// Defined in dit/model_parity.cpp: "dit_attn", "dit_model", "dit_sampler".
std::map<std::string, ParityRunner> model_parity_runners();
// Defined in dit/vae_parity.cpp: "vae".
std::map<std::string, ParityRunner> vae_parity_runners();
}  // namespace moh::dit
