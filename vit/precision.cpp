// MoH-TransNeXt precision policy (see vit/precision.h).
#include "vit/precision.h"

namespace moh::vit {

void apply_vit_precision(TransNeXt& model, const torch::Device& device, Precision p) {
  apply_precision(*model, device, p, [](const std::string& name, const torch::nn::Module& m) {
    const bool gemm = dynamic_cast<const torch::nn::LinearImpl*>(&m) != nullptr ||
                      dynamic_cast<const torch::nn::Conv2dImpl*>(&m) != nullptr;
    return gemm && !is_router_module_name(name);
  });
}

}  // namespace moh::vit
