// Torch glue of the fused MoH-ViT aggregated-attention kernel (see vit/aggregated_attention_cuda.h): checks tensors,
// converts the small per-head tensors to fp32, fills kernels::VitAggParams and launches on the current stream; a
// launch error becomes moh::Error. Compiled only when Torch has CUDA. UNRUN on a GPU so far.
#include "vit/aggregated_attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "common/moh/kernel_dtype_cuda.h"
#include "kernels/moh_vit_aggregated.h"

namespace moh::cuda {
namespace {

torch::Tensor f32(const torch::Tensor& t) { return t.to(torch::kFloat32).contiguous(); }

}  // namespace

bool vit_aggregated_kernel_enabled() {
  const char* env = std::getenv("MOH_VIT_AGG_KERNEL");
  return env != nullptr && std::strcmp(env, "1") == 0;
}

bool vit_aggregated_supported(const AggregatedAttentionInputs& in) {
  kernels::DType dt;
  if (!in.q.defined() || !in.q.is_cuda() || in.q.dim() != 3 || !kernel_dtype(in.q.scalar_type(), &dt)) return false;
  const auto dev = in.q.device();
  const int64_t B = in.q.size(0), N = in.q.size(1), C = in.q.size(2), h = in.num_heads;
  if (h <= 0 || C % h != 0 || C / h > kernels::kVitAggMaxHeadDim || N != in.H * in.W) return false;
  if (in.window_size <= 0 || in.window_size % 2 == 0) return false;
  for (const auto* t : {&in.kv, &in.kv_pool})
    if (!t->defined() || t->device() != dev || t->scalar_type() != in.q.scalar_type() || t->dim() != 3 ||
        t->size(0) != B || t->size(2) != 2 * C || t->stride(2) != 1 || (t->size(1) > 1 && t->stride(0) != t->size(1) * t->stride(1)))
      return false;
  if (in.q.stride(2) != 1 || (N > 1 && in.q.stride(0) != N * in.q.stride(1))) return false;
  if (in.kv.size(1) != N) return false;
  const int64_t P = in.kv_pool.size(1);
  if (P <= 0 || in.window_size * in.window_size + P > kernels::kVitAggMaxKeys) return false;
  return in.gates.defined() && in.gates.device() == dev && in.gates.dim() == 3 && in.gates.size(0) == B &&
         in.gates.size(1) == N && in.gates.size(2) == h && in.pool_bias.defined() && in.pool_bias.numel() == h * N * P;
}

torch::Tensor vit_aggregated_attention(const AggregatedAttentionInputs& in) {
  MOH_CHECK(vit_aggregated_supported(in), "moh::cuda::vit_aggregated_attention: unsupported inputs q ",
            in.q.defined() ? in.q.sizes() : torch::IntArrayRef{}, " (see vit/aggregated_attention_cuda.h)");
  const c10::cuda::CUDAGuard guard(in.q.device());
  const int64_t B = in.q.size(0), N = in.q.size(1), C = in.q.size(2), h = in.num_heads, d = C / h;
  auto out = torch::empty({B, N, C}, in.q.options());  // [B, N, C], every element written by the kernel
  if (out.numel() == 0) return out;
  // Small tensors in fp32, laid out as the kernel reads them.
  const auto bias = f32(in.pool_bias);                                                   // [h, N, P]
  const auto qe = f32(in.query_embedding.reshape({h, d}));                               // [h, 1, d] -> [h, d]
  const auto sp = f32(torch::nn::functional::softplus(in.temperature.to(torch::kFloat32)).reshape({h}));  // [h]
  const auto scale = f32(in.seq_scale.reshape({N}));                                     // [N, 1] -> [N]
  const int64_t L = in.window_size * in.window_size;
  const auto rpb = f32(in.rpb_local.reshape({h, L}));                                    // [h, L]
  const auto lt = f32(in.learnable_tokens.reshape({h, d, L}));                           // [h, d, L]
  const auto lb = f32(in.learnable_bias.reshape({h, L}));                                // [h, 1, L] -> [h, L]
  const auto g = f32(in.gates);                                                          // [B, N, h]
  kernels::VitAggParams p;
  p.q = in.q.data_ptr();
  p.kv = in.kv.data_ptr();
  p.kv_pool = in.kv_pool.data_ptr();
  p.q_row = in.q.stride(1);
  p.kv_row = in.kv.stride(1);
  p.kvp_row = in.kv_pool.stride(1);
  p.pool_bias = bias.data_ptr<float>();
  p.qe = qe.data_ptr<float>();
  p.sp = sp.data_ptr<float>();
  p.scale = scale.data_ptr<float>();
  p.rpb = rpb.data_ptr<float>();
  p.lt = lt.data_ptr<float>();
  p.lb = lb.data_ptr<float>();
  p.gates = g.data_ptr<float>();
  p.out = out.data_ptr();
  p.B = B;
  p.H = in.H;
  p.W = in.W;
  p.h = h;
  p.d = d;
  p.P = in.kv_pool.size(1);
  p.ws = static_cast<int>(in.window_size);
  kernel_dtype(in.q.scalar_type(), &p.dtype);
  const cudaError_t err = kernels::vit_aggregated_attention_forward(p, at::cuda::getCurrentCUDAStream().stream());
  MOH_CHECK(err == cudaSuccess, "MoH-ViT fused aggregated attention kernel failed: ", cudaGetErrorString(err));
  return out;
}

}  // namespace moh::cuda
