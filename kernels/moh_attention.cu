// Kernel choice for MoH sparse-head attention (see kernels/moh_attention.h): tensor cores when the inputs allow,
// the SIMT kernel otherwise or when asked.
#include "kernels/moh_attention.h"

namespace moh::kernels {

cudaError_t sparse_attention_forward(const SparseAttentionParams& p, AttnKernel which, int sm, cudaStream_t stream) {
  switch (which) {
    case AttnKernel::kSimple:
      return sparse_attention_simple(p, stream);
    case AttnKernel::kTensorCore:
      if (!tensor_core_attention_supported(p, sm)) return cudaErrorInvalidValue;  // asked for, cannot: fail loudly
      return sparse_attention_tensor_core(p, stream);
    case AttnKernel::kAuto:
      return tensor_core_attention_supported(p, sm) ? sparse_attention_tensor_core(p, stream)
                                                     : sparse_attention_simple(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace moh::kernels
