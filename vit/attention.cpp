// MoH-TransNeXt attention layers. Mirrors SkyworkAI/MoH MoH-ViT/attention.py (`Attention`) and
// MoH-ViT/attention_native.py (`AggregatedAttention`, the nn.Unfold path the CUDA swattention path is checked
// against); formulas in spec/moh-vit.md §3.4-3.5, gates in spec/moh-attention.md §2 via moh::moh_gates.
#include "vit/attention.h"

#include <cmath>
#include <limits>

#include "common/cpu_gemm/onednn_linear.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "vit/aggregated_attention_cpu.h"
#ifdef MOH_WITH_CUDA
#include "vit/aggregated_attention_cuda.h"
#endif

namespace moh::vit {
namespace F = torch::nn::functional;

namespace {

// Official init of `temperature`: softplus(t) = 1/0.24.
torch::Tensor initial_temperature(int64_t h) { return torch::full({h, 1, 1}, std::log(std::expm1(1.0 / 0.24))); }

torch::Tensor l2_normalize(const torch::Tensor& t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1)); }

// o: [B, h, N, d] per-head outputs; gates [B, N, h] -> gated heads written head-major as [B, N, h*d], in o's dtype
// (fp32 gates times bf16 heads under mixed precision are rounded once, where the official autocast rounds for proj).
torch::Tensor gate_heads(const torch::Tensor& o, const torch::Tensor& gates) {
  const auto B = o.size(0), h = o.size(1), N = o.size(2), d = o.size(3);
  auto g = (o.transpose(1, 2) * gates.unsqueeze(-1)).reshape({B, N, h * d});  // [B,N,h,d] -> [B,N,C]
  return g.scalar_type() == o.scalar_type() ? g : g.to(o.scalar_type());
}

void check_input(const torch::Tensor& x, int64_t H, int64_t W, const AttentionOptions& o, const char* cls) {
  MOH_CHECK(x.dim() == 3 && x.size(1) == H * W && x.size(2) == o.dim, cls, ": expected input [B, ", H * W, ", ",
            o.dim, "], got ", x.sizes());
  MOH_CHECK(H == o.input_resolution[0] && W == o.input_resolution[1], cls, " was built for a ",
            o.input_resolution[0], "x", o.input_resolution[1], " token grid but got ", H, "x", W,
            " (the model supports only the img_size it was configured with)");
}

}  // namespace

MoHGateConfig AttentionOptions::gate_config() const {
  MoHGateConfig g;
  g.num_heads = num_heads;
  g.shared_head = shared_head;
  g.routed_head = routed_head;
  g.allow_single_shared = true;  // MoH-ViT gates hs == 1 with a constant 1
  g.dense = dense;
  return g;
}

torch::Tensor local_window_padding_mask(int64_t H, int64_t W, int64_t ws) {
  const int64_t p = ws / 2;
  auto mask = torch::zeros({H * W, ws * ws}, torch::kBool);
  auto acc = mask.accessor<bool, 2>();
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t a = 0; a < ws; ++a)
        for (int64_t b = 0; b < ws; ++b) {
          const int64_t r = i + a - p, c = j + b - p;
          acc[i * W + j][a * ws + b] = r < 0 || r >= H || c < 0 || c >= W;
        }
  return mask;
}

torch::Tensor local_windows(const torch::Tensor& t, int64_t H, int64_t W, int64_t ws) {
  const auto B = t.size(0), h = t.size(2), d = t.size(3), p = ws / 2;
  auto img = t.reshape({B, H, W, h * d});                                 // [B, N, h, d] -> [B, H, W, h*d]
  auto padded = torch::constant_pad_nd(img, {0, 0, p, p, p, p});          // [B, H+2p, W+2p, h*d], zeros outside
  auto win = padded.unfold(1, ws, 1).unfold(2, ws, 1);                    // [B, H, W, h*d, ws(a), ws(b)] (view)
  return win.view({B, H, W, h, d, ws, ws})                                // split channels into heads (view)
      .permute({0, 3, 1, 2, 4, 5, 6})                                     // [B, h, H, W, d, a, b]
      .reshape({B, h, H * W, d, ws * ws});                                // [B, h, N, d, L], slot z = a*ws + b
}

// ------------------------------------------------------------------------------------------------ Attention
AttentionImpl::AttentionImpl(const AttentionOptions& o) : o_(o), gate_cfg_(o.gate_config()) {
  MOH_CHECK(o.num_heads > 0 && o.dim % o.num_heads == 0, "Attention: dim ", o.dim, " should be divided by num_heads ",
            o.num_heads);
  gate_cfg_.validate("MoH-ViT Attention");
  const auto h = o.num_heads, d = o.head_dim(), C = o.dim;
  // ln(N) is a float64 0-dim buffer officially; multiplying a float32 tensor by it rounds it to float32.
  seq_length_scale_ = static_cast<float>(std::log(static_cast<double>(o.input_resolution[0] * o.input_resolution[1])));
  temperature = register_parameter("temperature", initial_temperature(h));
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(C, 3 * C).bias(o.qkv_bias)));
  query_embedding = register_parameter("query_embedding", torch::randn({h, 1, d}) * 0.02);
  proj = register_module("proj", torch::nn::Linear(C, C));
  cpb_fc1 = register_module("cpb_fc1", torch::nn::Linear(2, 512));
  cpb_fc2 = register_module("cpb_fc2", torch::nn::Linear(512, h));
  gate.create(*this, C, gate_cfg_);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                                     AttentionDebug* debug) {
  check_input(x, H, W, o_, "Attention");
  const auto B = x.size(0), N = x.size(1), h = o_.num_heads, d = o_.head_dim();
  MOH_CHECK(tables.num_queries == N && tables.num_keys == N, "Attention: CPB tables are for ", tables.num_queries,
            "x", tables.num_keys, " pairs, expected ", N, "x", N);
  auto gates = moh_gates(x, gate_cfg_, gate.weights(), debug ? &debug->router : nullptr);  // [B, N, h]
  // Attention math in the dtype of this module's own tensors (fp32 under mixed precision: bf16 GEMM outputs, fp32
  // logits and softmax, as a fused kernel with fp32 accumulators computes them), then proj in its weights' dtype.
  const auto core = temperature.scalar_type();
  auto qkv_h = as_dtype(cpu_gemm::linear(x, qkv->weight, qkv->bias), core).view({B, N, 3 * h, d}).permute({0, 2, 1, 3});  // [B,N,3h,d] -> [B,3h,N,d]
  auto q = qkv_h.slice(1, 0, h), k = qkv_h.slice(1, h, 2 * h), v = qkv_h.slice(1, 2 * h, 3 * h);  // [B, h, N, d]
  auto bias = bias_(tables, cpb_fc1, cpb_fc2);  // [h, N, N]
  auto q_s = (l2_normalize(q) + query_embedding) * F::softplus(temperature) * seq_length_scale_;
  auto attn = (torch::matmul(q_s, l2_normalize(k).transpose(-2, -1)) + bias).softmax(-1);  // [B, h, N, N]
  auto o = torch::matmul(attn, v);                                                           // [B, h, N, d]
  if (debug) debug->gates = gates;
  return cpu_gemm::linear(gate_heads(o, gates), proj->weight, proj->bias);
}

// -------------------------------------------------------------------------------------- AggregatedAttention
AggregatedAttentionImpl::AggregatedAttentionImpl(const AttentionOptions& o) : o_(o), gate_cfg_(o.gate_config()) {
  MOH_CHECK(o.num_heads > 0 && o.dim % o.num_heads == 0, "AggregatedAttention: dim ", o.dim,
            " should be divided by num_heads ", o.num_heads);
  MOH_CHECK(o.window_size > 0 && o.window_size % 2 == 1, "AggregatedAttention: window size must be odd, got ",
            o.window_size);
  MOH_CHECK(o.pool_size[0] > 0 && o.pool_size[1] > 0 && o.pool_size[0] <= o.input_resolution[0] &&
                o.pool_size[1] <= o.input_resolution[1],
            "AggregatedAttention: pool grid ", o.pool_size[0], "x", o.pool_size[1], " must be non-empty and fit the ",
            o.input_resolution[0], "x", o.input_resolution[1], " token grid");
  gate_cfg_.validate("MoH-ViT AggregatedAttention");
  const auto h = o.num_heads, d = o.head_dim(), C = o.dim, L = o.window_size * o.window_size;
  temperature = register_parameter("temperature", initial_temperature(h));
  q = register_module("q", torch::nn::Linear(torch::nn::LinearOptions(C, C).bias(o.qkv_bias)));
  query_embedding = register_parameter("query_embedding", torch::randn({h, 1, d}) * 0.02);
  kv = register_module("kv", torch::nn::Linear(torch::nn::LinearOptions(C, 2 * C).bias(o.qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(C, C));
  sr = register_module("sr", torch::nn::Conv2d(torch::nn::Conv2dOptions(C, C, 1)));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C}).eps(1e-5)));  // default eps
  cpb_fc1 = register_module("cpb_fc1", torch::nn::Linear(2, 512));
  cpb_fc2 = register_module("cpb_fc2", torch::nn::Linear(512, h));
  relative_pos_bias_local = register_parameter("relative_pos_bias_local", torch::randn({h, L}) * 4e-4);
  learnable_tokens = register_parameter("learnable_tokens", torch::randn({h, d, L}) * 0.02);
  learnable_bias = register_parameter("learnable_bias", torch::zeros({h, 1, L}));
  gate.create(*this, C, gate_cfg_);

  auto mask = local_window_padding_mask(o.input_resolution[0], o.input_resolution[1], o.window_size);  // [N, L]
  auto valid = (~mask).sum(-1, /*keepdim=*/true).to(torch::kFloat32);                                   // [N, 1]
  // Official: np.log(float32 counts + pool_len) stays float32.
  seq_scale_ = DeviceConstant(torch::log(valid + static_cast<double>(o.pool_size[0] * o.pool_size[1])));
  padding_mask_ = DeviceConstant(mask);
}

torch::Tensor AggregatedAttentionImpl::forward(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                                               AttentionDebug* debug) {
  // The fused kernel has no backward: with gradients on and anything here requiring them, stay on LibTorch ops.
  bool needs_grad = false;
  if (torch::GradMode::is_enabled()) {
    needs_grad = x.requires_grad();
    for (const auto& p : parameters()) needs_grad = needs_grad || p.requires_grad();
  }
  // fp32, and mixed precision (bf16 GEMM weights, x in bf16): the fused kernel computes the attention in fp32
  if (use_fused_cpu_ && !needs_grad && aggregated_attention_cpu_applicable(x) && q->weight.scalar_type() == x.scalar_type())
    return forward_fused_cpu(x, H, W, tables, debug);
#ifdef MOH_WITH_CUDA
  if (!needs_grad && x.is_cuda() && cuda::vit_aggregated_kernel_enabled()) return forward_fused_cuda(x, H, W, tables, debug);
#endif
  return forward_reference(x, H, W, tables, debug);
}

AggregatedAttentionInputs AggregatedAttentionImpl::fused_inputs(torch::Tensor q_, torch::Tensor kv_,
                                                                torch::Tensor kv_pool, const CpbTables& tables,
                                                                torch::Tensor gates, torch::Tensor seq_scale,
                                                                int64_t H, int64_t W) {
  AggregatedAttentionInputs in;
  in.q = std::move(q_);
  in.kv = std::move(kv_);
  in.kv_pool = std::move(kv_pool);
  in.pool_bias = bias_(tables, cpb_fc1, cpb_fc2);  // [h, N, P]
  in.temperature = temperature;
  in.query_embedding = query_embedding;
  in.seq_scale = std::move(seq_scale);
  in.rpb_local = relative_pos_bias_local;
  in.learnable_tokens = learnable_tokens;
  in.learnable_bias = learnable_bias;
  in.gates = std::move(gates);
  in.H = H;
  in.W = W;
  in.window_size = o_.window_size;
  in.num_heads = o_.num_heads;
  return in;
}

torch::Tensor AggregatedAttentionImpl::forward_fused_cuda(const torch::Tensor& x, int64_t H, int64_t W,
                                                          const CpbTables& tables, AttentionDebug* debug) {
#ifdef MOH_WITH_CUDA
  check_input(x, H, W, o_, "AggregatedAttention");
  const auto B = x.size(0), N = x.size(1), C = o_.dim, P = o_.pool_size[0] * o_.pool_size[1];
  MOH_CHECK(tables.num_queries == N && tables.num_keys == P, "AggregatedAttention: CPB tables are for ",
            tables.num_queries, "x", tables.num_keys, " pairs, expected ", N, "x", P);
  auto gates = moh_gates(x, gate_cfg_, gate.weights(), debug ? &debug->router : nullptr);  // [B, N, h]
  // Pooled tokens exactly as forward_reference (sr conv, GELU, adaptive pool, LayerNorm in its weights' dtype).
  auto x_img = x.transpose(1, 2).reshape({B, C, H, W});  // [B, N, C] -> [B, C, H, W]
  auto pooled = F::adaptive_avg_pool2d(torch::gelu(sr(x_img)),
                                       F::AdaptiveAvgPool2dFuncOptions({o_.pool_size[0], o_.pool_size[1]}));
  // [B, C, P] -> [B, P, C]
  auto x_pool = norm(pooled.reshape({B, C, P}).transpose(1, 2).to(norm->weight.scalar_type())).to(x.scalar_type());
  // [B, N, C], [B, N, 2C], [B, P, 2C] in the GEMM dtype; the sequence scale fp32 on x's device
  const auto in = fused_inputs(q(x).contiguous(), kv(x).contiguous(), kv(x_pool).contiguous(), tables, gates,
                               seq_scale_.on(x.device()), H, W);
  auto y = cuda::vit_aggregated_attention(in);  // [B, N, C] gated heads, q's dtype
  if (debug) debug->gates = gates;
  return proj(as_dtype(y, proj->weight.scalar_type()));
#else
  throw Unsupported("AggregatedAttention::forward_fused_cuda: this build has no CUDA kernels");
#endif
}

torch::Tensor AggregatedAttentionImpl::forward_fused_cpu(const torch::Tensor& x_in, int64_t H, int64_t W,
                                                         const CpbTables& tables, AttentionDebug* debug) {
  check_input(x_in, H, W, o_, "AggregatedAttention");
  const auto x = x_in.contiguous();
  const auto B = x.size(0), N = x.size(1), C = o_.dim, P = o_.pool_size[0] * o_.pool_size[1];
  MOH_CHECK(tables.num_queries == N && tables.num_keys == P, "AggregatedAttention: CPB tables are for ",
            tables.num_queries, "x", tables.num_keys, " pairs, expected ", N, "x", P);
  auto gates = moh_gates(x, gate_cfg_, gate.weights(), debug ? &debug->router : nullptr);  // [B, N, h]

  // Pooled keys/values, channels-last all the way: sr (a 1x1 conv = a Linear over channels) on the tokens, GELU,
  // adaptive average pool of the channels-last view, LayerNorm, kv.
  // Mixed precision: GEMMs in the weights' bf16, LayerNorm in its fp32, the attention kernel in fp32 (the official
  // autocast code runs it in bf16; fp32 here is closer to the fp32 model and the kernel has no bf16 variant).
  const auto f32 = [](const torch::Tensor& t) { return as_dtype(t, torch::kFloat32); };
  auto s = cpu_gemm::linear(x, sr->weight.view({C, C}), sr->bias, cpu_gemm::Epilogue::kGeluErf);  // [B, N, C]
  auto s_img = s.view({B, H, W, C}).permute({0, 3, 1, 2});                        // [B, C, H, W] (channels-last view)
  auto pooled = F::adaptive_avg_pool2d(s_img, F::AdaptiveAvgPool2dFuncOptions({o_.pool_size[0], o_.pool_size[1]}));
  // [B, C, Hp, Wp] -> [B, P, C]
  auto x_pool = norm(as_dtype(pooled.permute({0, 2, 3, 1}).reshape({B, P, C}), norm->weight.scalar_type()));

  // [B, N, C], [B, N, 2C], [B, P, 2C], all fp32
  auto in = fused_inputs(f32(cpu_gemm::linear(x, q->weight, q->bias)), f32(cpu_gemm::linear(x, kv->weight, kv->bias)),
                         f32(cpu_gemm::linear(x_pool, kv->weight, kv->bias)), tables, gates,
                         f32(seq_scale_.on(x.device())), H, W);
  for (auto* t : {&in.pool_bias, &in.temperature, &in.query_embedding, &in.rpb_local, &in.learnable_tokens,
                  &in.learnable_bias, &in.gates})
    *t = f32(*t);
  auto y = aggregated_attention_cpu(in);  // [B, N, C] gated heads, fp32
  if (debug) debug->gates = gates;
  return cpu_gemm::linear(y, proj->weight, proj->bias);
}

torch::Tensor AggregatedAttentionImpl::forward_reference(const torch::Tensor& x, int64_t H, int64_t W,
                                                         const CpbTables& tables, AttentionDebug* debug) {
  check_input(x, H, W, o_, "AggregatedAttention");
  const auto B = x.size(0), N = x.size(1), C = o_.dim, h = o_.num_heads, d = o_.head_dim();
  const auto ws = o_.window_size, L = ws * ws, P = o_.pool_size[0] * o_.pool_size[1];
  MOH_CHECK(tables.num_queries == N && tables.num_keys == P, "AggregatedAttention: CPB tables are for ",
            tables.num_queries, "x", tables.num_keys, " pairs, expected ", N, "x", P);
  auto gates = moh_gates(x, gate_cfg_, gate.weights(), debug ? &debug->router : nullptr);  // [B, N, h]

  // Queries: L2-normalised (q_hat, also used by the learnable-token term) and scaled (q_s) for the logits.
  // Attention math in the dtype of this module's own tensors (fp32 under mixed precision, see Attention::forward).
  const auto core = temperature.scalar_type();
  auto q_hat = l2_normalize(as_dtype(q(x), core).view({B, N, h, d}).permute({0, 2, 1, 3}));  // -> [B, h, N, d]
  auto q_s = (q_hat + query_embedding) * F::softplus(temperature) * seq_scale_.like(q_hat);  // scale [N,1] per query

  // Local keys/values over each pixel's window; out-of-grid slots are zeros and masked below.
  auto kv_x = as_dtype(kv(x), core);                                              // [B, N, 2C]
  auto k_hat = l2_normalize(kv_x.slice(-1, 0, C).view({B, N, h, d}));             // [B, N, h, d]
  auto v = kv_x.slice(-1, C, 2 * C).view({B, N, h, d});                           // [B, N, h, d]
  auto k_win = local_windows(k_hat, H, W, ws);                                    // [B, h, N, d, L]
  auto v_win = local_windows(v, H, W, ws);                                        // [B, h, N, d, L]
  auto attn_local = torch::matmul(q_s.unsqueeze(-2), k_win).squeeze(-2)          // [B,h,N,1,d]@[B,h,N,d,L] -> [B,h,N,L]
                    + relative_pos_bias_local.unsqueeze(1);                       // [h, 1, L]
  attn_local = attn_local.masked_fill(padding_mask_.like(x), -std::numeric_limits<double>::infinity());

  // Pooled keys/values: sr (1x1 conv) -> GELU -> adaptive average pool -> LayerNorm -> the same kv Linear.
  auto x_img = x.transpose(1, 2).reshape({B, C, H, W});                                 // [B, N, C] -> [B, C, H, W]
  auto pooled = F::adaptive_avg_pool2d(torch::gelu(sr(x_img)),
                                       F::AdaptiveAvgPool2dFuncOptions({o_.pool_size[0], o_.pool_size[1]}));
  // [B, C, P] -> [B, P, C]; the LayerNorm runs in its weights' dtype (fp32 under mixed precision), kv in x's.
  auto x_pool = norm(pooled.reshape({B, C, P}).transpose(1, 2).to(norm->weight.scalar_type())).to(x.scalar_type());
  auto kv_pool = as_dtype(kv(x_pool), core).view({B, P, 2 * h, d}).permute({0, 2, 1, 3});  // [B, 2h, P, d]
  auto k_pool = l2_normalize(kv_pool.slice(1, 0, h)), v_pool = kv_pool.slice(1, h, 2 * h);  // [B, h, P, d]
  auto attn_pool = torch::matmul(q_s, k_pool.transpose(-2, -1)) + bias_(tables, cpb_fc1, cpb_fc2);  // [B,h,N,P]

  // One softmax over [local L | pooled P], then each part aggregates its own values.
  auto attn = torch::cat({attn_local, attn_pool}, -1).softmax(-1);  // [B, h, N, L+P]
  auto a_local = attn.slice(-1, 0, L), a_pool = attn.slice(-1, L, L + P);
  auto w_local = torch::matmul(q_hat, learnable_tokens) + learnable_bias + a_local;  // [B, h, N, L]
  auto x_local = torch::matmul(w_local.unsqueeze(-2), v_win.transpose(-2, -1)).squeeze(-2);  // [B, h, N, d]
  auto o = x_local + torch::matmul(a_pool, v_pool);                                          // [B, h, N, d]
  if (debug) debug->gates = gates;
  return proj(as_dtype(gate_heads(o, gates), proj->weight.scalar_type()));
}

}  // namespace moh::vit
