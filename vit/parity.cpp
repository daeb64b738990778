// Parity runners of the MoH-ViT families: the model/attention runners live in vit/model_parity.cpp.
#include "vit/parity.h"

namespace moh::vit {

std::map<std::string, ParityRunner> model_parity_runners();  // vit/model_parity.cpp: "vit_attn", "vit_model"

std::map<std::string, ParityRunner> parity_runners() { return model_parity_runners(); }

}  // namespace moh::vit
