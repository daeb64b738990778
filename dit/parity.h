// Parity runners for the MoH-DiT families of reference files (dit_attn, dit_model, dit_sampler, vae).
#pragma once
#include <map>
#include <string>

#include "common/parity.h"

namespace moh::dit {
std::map<std::string, ParityRunner> parity_runners();
}
