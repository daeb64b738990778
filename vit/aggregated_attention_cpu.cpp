// Torch glue of the fused CPU aggregated attention (vit/aggregated_attention_cpu.h): checks shapes, prepares the
// normalised keys, and runs vit/aggregated_attention_kernel.cpp over pixel rows with at::parallel_for. Mirrors the
// part of SkyworkAI/MoH MoH-ViT/attention_native.py `AggregatedAttention.forward` between the projections and proj.
#include "vit/aggregated_attention_cpu.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <vector>

#include "common/error.h"
#include "common/runtime/autograd.h"
#include "vit/aggregated_attention_kernel.h"

namespace moh::vit {

bool aggregated_attention_cpu_applicable(const torch::Tensor& x) {
  return x.device().is_cpu() && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
         !needs_autograd({&x});
}

torch::Tensor aggregated_attention_cpu(const AggregatedAttentionInputs& in) {
  RECORD_FUNCTION("moh::aggregated_attention_cpu", std::vector<c10::IValue>());
  const int64_t B = in.q.size(0), N = in.q.size(1), C = in.q.size(2), h = in.num_heads, d = C / h;
  const int64_t ws = in.window_size, L = ws * ws, P = in.kv_pool.size(1);
  MOH_CHECK(in.q.dim() == 3 && C % h == 0 && N == in.H * in.W, "aggregated_attention_cpu: q must be [B, H*W, C]");
  MOH_CHECK(in.kv.sizes() == torch::IntArrayRef({B, N, 2 * C}) && in.kv_pool.dim() == 3 && in.kv_pool.size(0) == B &&
                in.kv_pool.size(2) == 2 * C,
            "aggregated_attention_cpu: kv must be [B, N, 2C] and kv_pool [B, P, 2C]");
  MOH_CHECK(in.pool_bias.sizes() == torch::IntArrayRef({h, N, P}), "aggregated_attention_cpu: pool bias must be [h, N, P]");
  MOH_CHECK(in.gates.sizes() == torch::IntArrayRef({B, N, h}), "aggregated_attention_cpu: gates must be [B, N, h]");
  MOH_CHECK(ws % 2 == 1 && ws <= cpu::kMaxWindowSize, "aggregated_attention_cpu: window size ", ws,
            " must be odd and at most ", cpu::kMaxWindowSize);
  MOH_CHECK(in.rpb_local.numel() == h * L && in.learnable_tokens.numel() == h * d * L &&
                in.learnable_bias.numel() == h * L && in.query_embedding.numel() == h * d &&
                in.temperature.numel() == h && in.seq_scale.numel() == N,
            "aggregated_attention_cpu: parameter shapes do not match h=", h, ", d=", d, ", L=", L, ", N=", N);
  for (const auto* t : {&in.q, &in.kv, &in.kv_pool, &in.pool_bias, &in.gates})
    MOH_CHECK(t->device().is_cpu() && t->scalar_type() == torch::kFloat32,
              "aggregated_attention_cpu: inputs must be float32 CPU tensors");

  auto f32 = [](const torch::Tensor& t) { return t.to(torch::kFloat32).contiguous(); };
  const auto q = f32(in.q), kv = f32(in.kv), kv_pool = f32(in.kv_pool), bias = f32(in.pool_bias);
  const auto gates = f32(in.gates);
  const auto sp = f32(torch::softplus(in.temperature).reshape({h}));  // [h,1,1] -> [h]
  const auto qe = f32(in.query_embedding.reshape({h, d}));            // [h,1,d] -> [h,d]
  const auto scale = f32(in.seq_scale.reshape({N}));                  // [N,1] -> [N]
  const auto rpb = f32(in.rpb_local.reshape({h, L}));
  cpu::AggParams p;
  const int64_t Lp = cpu::AggParams::pad16(L), Pp = cpu::AggParams::pad16(P);
  // [h, d, L] -> [h, d, Lp]: zero columns so the kernel multiplies whole 16-lane blocks.
  const auto lt = f32(torch::constant_pad_nd(in.learnable_tokens.reshape({h, d, L}), {0, Lp - L}));
  const auto lb = f32(in.learnable_bias.reshape({h, L}));  // [h,1,L] -> [h,L]

  auto khat = torch::empty({B, N, C}, q.options());     // normalised local keys
  auto kp_t = torch::zeros({B, h, d, Pp}, q.options());  // normalised pooled keys, transposed per (b, head), padded
  auto out = torch::empty({B, N, C}, q.options());

  const float* kv_ptr = kv.data_ptr<float>();
  float* khat_ptr = khat.data_ptr<float>();
  at::parallel_for(0, B * N, 256, [&](int64_t b0, int64_t b1) {
    cpu::l2_normalize_heads(kv_ptr, 2 * C, khat_ptr, h, d, b0, b1);
  });
  for (int64_t b = 0; b < B; ++b)
    cpu::pack_pooled_keys(kv_pool.data_ptr<float>(), 2 * C, kp_t.data_ptr<float>(), h, d, P, Pp, b);

  p.q = q.data_ptr<float>();
  p.khat = khat_ptr;
  p.v = kv_ptr + C;
  p.v_row = 2 * C;
  p.kp_t = kp_t.data_ptr<float>();
  p.vp = kv_pool.data_ptr<float>() + C;
  p.bias = bias.data_ptr<float>();
  p.qe = qe.data_ptr<float>();
  p.sp = sp.data_ptr<float>();
  p.scale = scale.data_ptr<float>();
  p.rpb = rpb.data_ptr<float>();
  p.lt = lt.data_ptr<float>();
  p.lb = lb.data_ptr<float>();
  p.gates = gates.data_ptr<float>();
  p.out = out.data_ptr<float>();
  p.N = N;
  p.H = in.H;
  p.W = in.W;
  p.ws = ws;
  p.h = h;
  p.d = d;
  p.P = P;
  {
    RECORD_FUNCTION("moh::aggregated_attention_cpu_rows", std::vector<c10::IValue>());
    at::parallel_for(0, B * N, 32, [&](int64_t r0, int64_t r1) {
      std::vector<float> scratch(static_cast<size_t>(p.scratch_floats()));
      cpu::agg_rows(p, r0, r1, scratch.data());
    });
  }
  return out;  // [B, N, C] = [B, N, h, d] gated, head-major
}

}  // namespace moh::vit
