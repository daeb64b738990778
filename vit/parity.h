// Parity runners for the MoH-ViT families of reference files (vit_attn, vit_model).
#pragma once
#include <map>
#include <string>

#include "parity/parity.h"

namespace moh::vit {
std::map<std::string, ParityRunner> parity_runners();
}
