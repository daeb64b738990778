// MoH-TransNeXt model. Mirrors SkyworkAI/MoH MoH-ViT/transnext.py (unchanged TransNeXt except the MoH gates);
// forward pass in spec/moh-vit.md §3.
#include "vit/model.h"

#include "common/cpu_gemm/onednn_linear.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"
#include "common/weights/weights_file.h"
#include "vit/conv_glu_cpu.h"

namespace moh::vit {

// ------------------------------------------------------------------------------------------- ConvolutionalGLU
DWConvImpl::DWConvImpl(int64_t dim) {
  dwconv = register_module("dwconv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 3).padding(1).groups(dim)));
}

torch::Tensor DWConvImpl::forward(const torch::Tensor& x, int64_t H, int64_t W) {
  const auto B = x.size(0), C = x.size(2);
  // Tokens are already NHWC in memory: hand the conv a channels-last NCHW view instead of transposing.
  auto img = x.reshape({B, H, W, C}).permute({0, 3, 1, 2});  // [B, N, C] -> [B, H, W, C] -> [B, C, H, W] (view)
  auto y = dwconv(img);                                       // [B, C, H, W]
  return y.permute({0, 2, 3, 1}).reshape({B, H * W, C});     // [B, H, W, C] -> [B, N, C]
}

ConvolutionalGLUImpl::ConvolutionalGLUImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, 2 * hidden));
  dwconv = register_module("dwconv", DWConv(hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor ConvolutionalGLUImpl::forward(const torch::Tensor& x, int64_t H, int64_t W) {
  auto h2 = cpu_gemm::linear(x, fc1->weight, fc1->bias);  // [B, N, 2*hid]: first half gates through the dwconv, second half is the value
  const auto hid = h2.size(-1) / 2;
  const auto& conv = dwconv->dwconv;
  if (conv_glu_middle_supported(h2, conv->weight, conv->bias))  // fp32 CPU inference: one fused pass
    return cpu_gemm::linear(conv_glu_middle_cpu(h2, conv->weight, conv->bias, H, W), fc2->weight, fc2->bias);
  auto a = dwconv(h2.slice(-1, 0, hid), H, W);
  return cpu_gemm::linear(torch::gelu(a) * h2.slice(-1, hid, 2 * hid), fc2->weight, fc2->bias);
}

// ------------------------------------------------------------------------------------------------------ Block
BlockImpl::BlockImpl(const AttentionOptions& o, int64_t mlp_hidden, double norm_eps) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(norm_eps)));
  if (o.sr_ratio == 1)
    attn_full = register_module("attn", Attention(o));
  else
    attn_agg = register_module("attn", AggregatedAttention(o));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(norm_eps)));
  mlp = register_module("mlp", ConvolutionalGLU(o.dim, mlp_hidden));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, int64_t H, int64_t W, const CpbTables& tables,
                                 ViTRecord* record, const std::string& name, const GateRecorder* gate_recorder) {
  AttentionDebug dbg;
  auto* d = record || gate_recorder ? &dbg : nullptr;
  // Mixed precision (common/runtime/precision.h): LayerNorm on the fp32 stream, its output cast to the GEMM dtype.
  const auto gemm_dt = mlp->fc1->weight.scalar_type();
  auto u = as_dtype(norm1(x), gemm_dt);
  auto a = attn_full ? attn_full->forward(u, H, W, tables, d) : attn_agg->forward(u, H, W, tables, d);
  auto y = x + a;
  y = y + mlp(as_dtype(norm2(y), gemm_dt), H, W);
  if (gate_recorder) (*gate_recorder)(name, dbg.gates);
  if (record) {
    (*record)[name + ".attn"] = a;
    (*record)[name + ".attn.gates"] = dbg.gates;
    if (dbg.router.router_probs.defined()) {  // routed layers: what the training load-balancing loss needs
      (*record)[name + ".attn.router_probs"] = dbg.router.router_probs;
      (*record)[name + ".attn.router_topk_indices"] = dbg.router.topk_indices;
    }
    (*record)[name] = y;
  }
  return y;
}

// ---------------------------------------------------------------------------------------------- patch embed
OverlapPatchEmbedImpl::OverlapPatchEmbedImpl(int64_t kernel, int64_t stride, int64_t in_chans, int64_t dim) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, dim, kernel).stride(stride).padding(kernel / 2)));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));  // eps 1e-5 (default)
}

torch::Tensor OverlapPatchEmbedImpl::forward(const torch::Tensor& x) {
  auto y = proj(as_dtype(x, proj->weight.scalar_type()));  // [B, C, H, W]
  // [B, C, H*W] -> [B, N, C]; the LayerNorm (fp32 under mixed precision) starts the residual stream.
  return norm(as_dtype(y.flatten(2).transpose(1, 2), norm->weight.scalar_type()));
}

// -------------------------------------------------------------------------------------------------- TransNeXt
TransNeXtImpl::TransNeXtImpl(const ViTConfig& cfg) : cfg_(cfg) {
  cfg_.validate();
  for (int s = 0; s < kNumStages; ++s) {
    const auto res = cfg_.resolution(s), key = cfg_.key_size(s), pre = cfg_.pretrain_resolution(s);
    tables_.emplace_back(relative_position_cpb({res, res}, {key, key}, {pre, pre}));

    const auto in = s == 0 ? cfg_.in_chans : cfg_.embed_dims[s - 1];
    const auto sn = std::to_string(s + 1);
    patch_embed.push_back(register_module(
        "patch_embed" + sn, OverlapPatchEmbed(cfg_.stem_kernel(s), cfg_.stem_stride(s), in, cfg_.embed_dims[s])));

    AttentionOptions o;
    o.dim = cfg_.embed_dims[s];
    o.num_heads = cfg_.num_heads[s];
    o.input_resolution = {res, res};
    o.qkv_bias = cfg_.qkv_bias;
    o.shared_head = cfg_.shared_head[s];
    o.routed_head = cfg_.routed_head[s];
    o.dense = !cfg_.moh;
    o.sr_ratio = cfg_.sr_ratios[s];
    o.window_size = cfg_.window_size[s];
    o.pool_size = {key, key};
    torch::nn::ModuleList list;
    for (int64_t j = 0; j < cfg_.depths[s]; ++j) list->push_back(Block(o, cfg_.mlp_hidden(s), cfg_.norm_eps));
    blocks.push_back(register_module("block" + sn, list));
    norms.push_back(register_module(
        "norm" + sn, torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg_.embed_dims[s]}).eps(cfg_.norm_eps))));
  }
  if (cfg_.num_classes > 0) head = register_module("head", torch::nn::Linear(cfg_.embed_dims[3], cfg_.num_classes));
}

torch::Tensor TransNeXtImpl::forward_features(const torch::Tensor& x_in, ViTRecord* record) {
  MOH_CHECK(x_in.dim() == 4 && x_in.size(1) == cfg_.in_chans && x_in.size(2) == cfg_.img_size &&
                x_in.size(3) == cfg_.img_size,
            "MoH-ViT '", cfg_.name, "' takes images [B, ", cfg_.in_chans, ", ", cfg_.img_size, ", ", cfg_.img_size,
            "], got ", x_in.sizes(), " (the position tables are built for img_size ", cfg_.img_size,
            "; use a config with another img_size for other resolutions)");
  auto x = x_in;
  const auto B = x.size(0);
  for (int s = 0; s < kNumStages; ++s) {
    const auto sn = std::to_string(s + 1);
    const auto H = cfg_.resolution(s), W = H;
    x = patch_embed[s]->forward(x);  // [B, N, C]
    if (record) (*record)["patch_embed" + sn] = x;
    const auto tables = tables_[s].like(x);
    for (size_t j = 0; j < blocks[s]->size(); ++j)
      x = blocks[s]->ptr<BlockImpl>(j)->forward(x, H, W, tables, record, "block" + sn + "." + std::to_string(j),
                                                gate_recorder_ ? &gate_recorder_ : nullptr);
    x = norms[s](x);
    if (record) (*record)["norm" + sn] = x;
    // Next stem conv wants NCHW: a channels-last view of the tokens, no copy.
    if (s + 1 < kNumStages) x = x.view({B, H, W, -1}).permute({0, 3, 1, 2});  // [B, N, C] -> [B, C, H, W]
  }
  auto features = x.mean(1);  // [B, C4]
  if (record) (*record)["features"] = features;
  return features;
}

torch::Tensor TransNeXtImpl::forward(const torch::Tensor& x, ViTRecord* record) {
  auto f = forward_features(x, record);
  auto logits = head ? as_dtype(head(as_dtype(f, head->weight.scalar_type())), f.scalar_type()) : f;
  if (record) (*record)["logits"] = logits;
  return logits;
}

std::map<std::string, torch::Tensor> TransNeXtImpl::official_buffers() const {
  std::map<std::string, torch::Tensor> out;
  for (int s = 0; s < kNumStages; ++s) {
    const auto sn = std::to_string(s + 1);
    out["relative_pos_index" + sn] = tables_[s].host().index;
    out["relative_coords_table" + sn] = tables_[s].host().coords;
    for (size_t j = 0; j < blocks[s]->size(); ++j) {
      const auto pre = "block" + sn + "." + std::to_string(j) + ".attn.";
      auto blk = blocks[s]->ptr<BlockImpl>(j);
      if (blk->attn_agg) {
        out[pre + "seq_length_scale"] = blk->attn_agg->seq_length_scale();
        out[pre + "padding_mask"] = blk->attn_agg->padding_mask();
      } else {
        out[pre + "seq_length_scale"] = torch::tensor(blk->attn_full->seq_length_scale());
      }
    }
  }
  return out;
}

TransNeXt build_vit(const ViTConfig& cfg, const std::string& weights, const torch::Device& device,
                    torch::Dtype dtype) {
  TransNeXt model(cfg);
  if (!weights.empty()) {
    WeightsFile file(weights);  // safetensors or a PyTorch checkpoint, by content
    LoadOptions lo;
    lo.strip_prefixes = {"module.", "_orig_mod.", "model."};
    load_weights_into(*model, file, lo);
  }
  model->to(device, dtype);
  model->eval();
  return model;
}

}  // namespace moh::vit
