// MoH-DiT precision policy (see dit/precision.h).
#include "dit/precision.h"

namespace moh::dit {

void apply_dit_precision(DiT& model, const torch::Device& device, Precision p) {
  apply_precision(*model, device, p, [](const std::string& name, const torch::nn::Module& m) {
    const bool gemm = dynamic_cast<const LinearImpl*>(&m) != nullptr ||
                      dynamic_cast<const torch::nn::Conv2dImpl*>(&m) != nullptr;
    return gemm && !is_router_module_name(name);
  });
}

}  // namespace moh::dit
