// MoH-DiT model (SkyworkAI/MoH MoH-DiT/models.py: TimestepEmbedder, LabelEmbedder, DiTBlock, FinalLayer, DiT,
// get_2d_sincos_pos_embed; timm layers/patch_embed.py PatchEmbed, layers/mlp.py Mlp). spec/moh-dit.md §2.
#include "dit/model.h"

#include <cmath>

#include "common/error.h"
#include "common/runtime/precision.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"
#include "common/weights/weights_file.h"
#include "dit/fused_ops.h"

namespace moh::dit {
namespace {

void freeze(torch::nn::Module& m) {
  for (auto& p : m.parameters()) p.set_requires_grad(false);
}

}  // namespace

// ---------------------------------------------------------------------------------------------- PatchEmbed
PatchEmbedImpl::PatchEmbedImpl(int64_t input_size, int64_t patch_size, int64_t in_channels, int64_t hidden_size)
    : input_size_(input_size), in_channels_(in_channels) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, hidden_size, patch_size)
                                                       .stride(patch_size)
                                                       .bias(true)));
  freeze(*this);
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  MOH_CHECK(x.dim() == 4 && x.size(1) == in_channels_ && x.size(2) == input_size_ && x.size(3) == input_size_,
            "DiT input must be [B, ", in_channels_, ", ", input_size_, ", ", input_size_, "] (the model's "
            "in_channels and input_size; for the SD VAE input_size = image_size / 8), got ", x.sizes());
  return proj->forward(as_dtype(x, proj->weight.scalar_type()))  // [B, C, G, G] (mixed precision: bf16 conv)
      .flatten(2)             // [B, C, T]
      .transpose(1, 2);       // [B, T, C]
}

// ---------------------------------------------------------------------------------------------- TimestepEmbedder
TimestepEmbedderImpl::TimestepEmbedderImpl(int64_t hidden_size, int64_t frequency_embedding_size)
    : freq_dim_(frequency_embedding_size) {
  first_ = Linear(frequency_embedding_size, hidden_size, true);
  mlp = register_module("mlp", torch::nn::Sequential(first_, torch::nn::SiLU(), Linear(hidden_size, hidden_size, true)));
}

torch::Tensor TimestepEmbedderImpl::frequencies(int64_t dim, double max_period) {
  const int64_t half = dim / 2;
  // Official op order, all fp32 on CPU: -ln(max_period) * arange(half) / half, then exp.
  return torch::exp(-std::log(max_period) * torch::arange(half, torch::kFloat32) / static_cast<double>(half));
}

torch::Tensor TimestepEmbedderImpl::timestep_embedding(const torch::Tensor& t, int64_t dim, double max_period) {
  return timestep_embedding(t, dim, frequencies(dim, max_period).to(t.device()));  // official: moved to t's device
}

torch::Tensor TimestepEmbedderImpl::timestep_embedding(const torch::Tensor& t, int64_t dim,
                                                       const torch::Tensor& freqs) {
  auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);  // [B, half]
  auto emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);      // [B, 2*half]
  if (dim % 2) emb = torch::cat({emb, torch::zeros_like(emb.slice(1, 0, 1))}, -1);
  return emb;
}

torch::Tensor TimestepEmbedderImpl::forward(const torch::Tensor& t) {
  if (!freqs_.defined() || freqs_.device() != t.device()) freqs_ = frequencies(freq_dim_).to(t.device());
  return mlp->forward(timestep_embedding(t, freq_dim_, freqs_).to(first_->weight.scalar_type()));
}

// ---------------------------------------------------------------------------------------------- LabelEmbedder
LabelEmbedderImpl::LabelEmbedderImpl(int64_t num_classes, int64_t hidden_size, bool null_class)
    : rows_(num_classes + (null_class ? 1 : 0)) {
  embedding_table = register_module("embedding_table", torch::nn::Embedding(rows_, hidden_size));
  freeze(*this);
}

void LabelEmbedderImpl::check_labels(const torch::Tensor& labels) const {
  MOH_CHECK(labels.dim() == 1, "DiT labels must be a 1-D tensor [B], got ", labels.sizes());
  if (labels.numel() > 0) {
    const auto lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
    MOH_CHECK(lo >= 0 && hi < rows_, "DiT class label out of range: got ", lo, "..", hi, ", the model has ", rows_,
              " label rows (classes 0..", rows_ - 1, ", the last one is the null class when the model has one)");
  }
}

torch::Tensor LabelEmbedderImpl::forward(const torch::Tensor& labels) {
  MOH_CHECK(labels.dim() == 1, "DiT labels must be a 1-D tensor [B], got ", labels.sizes());
  if (labels.device().is_cpu()) check_labels(labels);  // on a GPU .item() would sync the host every forward
  return embedding_table->forward(labels.to(torch::kLong));
}

// ---------------------------------------------------------------------------------------------- Mlp
MlpImpl::MlpImpl(int64_t in_features, int64_t hidden_features) {
  fc1 = register_module("fc1", Linear(in_features, hidden_features, true));
  fc2 = register_module("fc2", Linear(hidden_features, in_features, true));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  // oneDNN fuses the GELU into fc1's GEMM; else fc1's output is a fresh tensor: GELU in place
  if (cpu_gemm::uses_onednn(x, fc1->weight)) return fc2->forward(fc1->forward_then(x, cpu_gemm::Epilogue::kGeluTanh));
  return fc2->forward(gelu_tanh_inference(fc1->forward(x)));
}

// ---------------------------------------------------------------------------------------------- DiTBlock
DiTBlockImpl::DiTBlockImpl(const DiTConfig& cfg, int64_t layer) {
  MoHAttentionOptions ao;
  ao.dim = cfg.hidden_size;
  ao.num_heads = cfg.num_heads.at(layer);
  ao.shared_head = cfg.shared_head.at(layer);
  ao.routed_head = cfg.routed_head.at(layer);
  ao.dense = !cfg.moh;
  ao.head_dim = cfg.head_dim.at(layer);
  ao.qkv_bias = true;
  attn = register_module("attn", MoHAttention(ao));
  mlp = register_module("mlp", Mlp(cfg.hidden_size, cfg.mlp_hidden()));
  adaLN_modulation = register_module(
      "adaLN_modulation", torch::nn::Sequential(torch::nn::SiLU(), Linear(cfg.hidden_size, 6 * cfg.hidden_size, true)));
}

torch::Tensor DiTBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& silu_c, DiTBlockDebug* debug,
                                    const torch::Tensor& mod_all) {
  // adaLN_modulation.0 (SiLU) was applied once by the caller; .1 is the Linear (or the caller's batched adaLN GEMM).
  auto mod = (mod_all.defined() ? mod_all : adaLN_modulation->ptr(1)->as<LinearImpl>()->forward(silu_c))
                 .chunk(6, 1);  // [B, 6C] -> 6 x [B, C]
  const auto &shift_msa = mod[0], &scale_msa = mod[1], &gate_msa = mod[2];
  const auto &shift_mlp = mod[3], &scale_mlp = mod[4], &gate_mlp = mod[5];

  // LayerNorm + modulate, and gated residual + LayerNorm + modulate, as the fused ops of dit/fused_ops.h (one CUDA
  // kernel each; the LibTorch reference elsewhere). The modulated tensors are made in the GEMM dtype they feed.
  const auto gemm_dt = attn->qkv->weight.scalar_type();
  MoHAttentionDebug adbg;
  auto a = attn->forward(layer_norm_modulate(x, shift_msa, scale_msa, gemm_dt), debug ? &adbg : nullptr);
  auto hz = gated_residual_norm_modulate(x, a, gate_msa, shift_mlp, scale_mlp, gemm_dt);  // h = x + gate_msa * a
  const auto& h = hz.h;
  auto m = mlp->forward(hz.z);
  if (debug) {
    debug->attn = a;
    debug->gates = adbg.gates;
    debug->router_probs = adbg.router_probs;
    debug->topk_indices = adbg.topk_indices;
  }
  return gated_residual(h, gate_mlp, m);  // h + gate_mlp[:, None] * mlp(...)
}

// ---------------------------------------------------------------------------------------------- FinalLayer
FinalLayerImpl::FinalLayerImpl(int64_t hidden_size, int64_t patch_size, int64_t out_channels) {
  linear = register_module("linear", Linear(hidden_size, patch_size * patch_size * out_channels, true));
  adaLN_modulation = register_module(
      "adaLN_modulation", torch::nn::Sequential(torch::nn::SiLU(), Linear(hidden_size, 2 * hidden_size, true)));
}

torch::Tensor FinalLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& silu_c) {
  auto mod = adaLN_modulation->ptr(1)->as<LinearImpl>()->forward(silu_c).chunk(2, 1);  // shift, scale [B, C]
  return linear->forward(layer_norm_modulate(x, mod[0], mod[1], linear->weight.scalar_type()));  // [B,T,p*p*out]
}

// ---------------------------------------------------------------------------------------------- DiT
torch::Tensor DiTImpl::sincos_pos_embed(int64_t hidden_size, int64_t grid_size) {
  // get_2d_sincos_pos_embed: float64 math; first half encodes the column (meshgrid(w, h)), second half the row;
  // each half is [sin(pos * omega), cos(pos * omega)] with omega_k = 1 / 10000^(k / (D/4)).
  const int64_t quarter = hidden_size / 4;
  auto omega = torch::arange(quarter, torch::kFloat64) / (hidden_size / 4.0);
  omega = 1.0 / torch::pow(10000.0, omega);                                   // [D/4]
  auto pos = torch::arange(grid_size, torch::kFloat32).to(torch::kFloat64);   // grid is float32 in numpy
  auto col = pos.repeat({grid_size});                                         // token n = i*G + j -> j
  auto row = pos.repeat_interleave(grid_size);                                // -> i
  auto emb1d = [&](const torch::Tensor& p) {
    auto out = p.unsqueeze(1) * omega.unsqueeze(0);  // [T, D/4] outer product
    return torch::cat({torch::sin(out), torch::cos(out)}, 1);  // [T, D/2]
  };
  return torch::cat({emb1d(col), emb1d(row)}, 1).to(torch::kFloat32).unsqueeze(0);  // [1, T, D]
}

DiTImpl::DiTImpl(const DiTConfig& cfg) : cfg_(cfg) {
  cfg_.validate("DiT");
  // Registration order = official state_dict order: pos_embed, x_embedder, t_embedder, y_embedder, blocks, final.
  pos_embed = register_parameter("pos_embed", sincos_pos_embed(cfg.hidden_size, cfg.grid_size()), false);
  x_embedder = register_module("x_embedder", PatchEmbed(cfg.input_size, cfg.patch_size, cfg.in_channels,
                                                        cfg.hidden_size));
  t_embedder = register_module("t_embedder", TimestepEmbedder(cfg.hidden_size));
  y_embedder = register_module("y_embedder", LabelEmbedder(cfg.num_classes, cfg.hidden_size, cfg.has_null_class()));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.depth; ++i) {
    block_list_.push_back(DiTBlock(cfg, i));
    blocks->push_back(block_list_.back());
  }
  final_layer = register_module("final_layer", FinalLayer(cfg.hidden_size, cfg.patch_size, cfg.out_channels()));
  freeze(*this);
}

torch::Tensor DiTImpl::unpatchify(const torch::Tensor& x) const {
  const int64_t B = x.size(0), G = cfg_.grid_size(), p = cfg_.patch_size, c = cfg_.out_channels();
  return x.reshape({B, G, G, p, p, c})      // [B, h, w, p, q, c]
      .permute({0, 5, 1, 3, 2, 4})          // [B, c, h, p, w, q]
      .reshape({B, c, G * p, G * p});       // [B, c, H, W]
}

torch::Tensor DiTImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y,
                               DiTDebug* debug) {
  MOH_CHECK(t.dim() == 1 && y.dim() == 1 && t.size(0) == x.size(0) && y.size(0) == x.size(0),
            "DiT forward: t and y must be 1-D with one entry per sample (batch ", x.size(0), "), got t ", t.sizes(),
            ", y ", y.sizes());
  auto record = [&](const std::string& name, const torch::Tensor& v) {
    if (debug && debug->enabled) debug->tensors[name] = v;
  };
  auto xe = x_embedder->forward(x.to(pos_embed.scalar_type()));  // [B, T, C]
  record("x_embedder", xe);
  // [B, T, C], contiguous: xe is a transposed view, and the fused row kernels (dit/fused_ops_cpu.h) read the
  // stream row by row
  auto h = (xe + pos_embed).contiguous();
  if (debug && debug->enabled) record("t_freq", TimestepEmbedderImpl::timestep_embedding(t, 256));
  auto te = t_embedder->forward(t.to(x.device()));  // [B, C]
  if (y.device().is_cpu()) y_embedder->check_labels(y);  // on the host, before the copy: no device sync
  auto ye = y_embedder->forward(y.to(x.device()));        // [B, C]
  auto c = te + ye;
  record("t_embedder", te);
  record("y_embedder", ye);
  record("c", c);
  auto silu_c = torch::silu(c);  // shared by every adaLN_modulation (each starts with SiLU)
  // One adaLN GEMM for all blocks when their weights are stacked (inference: stacked on first use).
  if (!torch::GradMode::is_enabled() && !adaln_stacked()) stack_adaln();
  std::vector<torch::Tensor> mods;
  if (!torch::GradMode::is_enabled() && adaln_stacked())
    mods = batched_adaln(silu_c, adaln_w_, adaln_b_, static_cast<int64_t>(block_list_.size()));  // depth x [B, 6C]
  for (size_t i = 0; i < block_list_.size(); ++i) {
    DiTBlockDebug bd;
    h = block_list_[i]->forward(h, silu_c, debug || gate_recorder_ ? &bd : nullptr,
                                mods.empty() ? torch::Tensor() : mods[i]);
    const std::string name = "blocks." + std::to_string(i);
    if (gate_recorder_) gate_recorder_(name, bd.gates);
    record(name, h);
    record(name + ".attn", bd.attn);
    record(name + ".attn.gates", bd.gates);
    if (bd.router_probs.defined()) record(name + ".attn.router_probs", bd.router_probs);
    if (bd.topk_indices.defined()) record(name + ".attn.router_topk_indices", bd.topk_indices);
  }
  auto f = final_layer->forward(h, silu_c);  // [B, T, p*p*out]
  record("final_layer", f);
  return unpatchify(as_dtype(f, pos_embed.scalar_type()));  // mixed precision: back to the fp32 stream dtype
}

void DiTImpl::stack_adaln() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ws, bs;
  for (auto& b : block_list_) {
    auto* lin = b->adaLN_modulation->ptr(1)->as<LinearImpl>();
    // Trainable weights are left alone: a trainer may own their storage (common/train/optim.h FlatParams views), and
    // re-pointing them here would silently detach them from the optimizer.
    if (lin->weight.requires_grad() || lin->bias.requires_grad()) return;
    ws.push_back(lin->weight);
    bs.push_back(lin->bias);
  }
  if (ws.empty()) return;
  adaln_w_ = stack_adaln_weights(ws);  // [depth*6C, C]
  adaln_b_ = stack_adaln_biases(bs);   // [depth*6C]
  const int64_t rows = ws[0].size(0);
  for (size_t i = 0; i < block_list_.size(); ++i) {  // each block's parameters become views of the stacked rows
    auto* lin = block_list_[i]->adaLN_modulation->ptr(1)->as<LinearImpl>();
    lin->weight.set_data(adaln_w_.narrow(0, static_cast<int64_t>(i) * rows, rows));
    lin->bias.set_data(adaln_b_.narrow(0, static_cast<int64_t>(i) * rows, rows));
  }
}

bool DiTImpl::adaln_stacked() const {
  if (!adaln_w_.defined() || block_list_.empty()) return false;
  const int64_t rows = adaln_w_.size(0) / static_cast<int64_t>(block_list_.size());
  const auto* wbase = static_cast<const char*>(adaln_w_.data_ptr());
  const auto* bbase = static_cast<const char*>(adaln_b_.data_ptr());
  for (size_t i = 0; i < block_list_.size(); ++i) {
    const auto* lin = block_list_[i]->adaLN_modulation->ptr(1)->as<LinearImpl>();
    const int64_t r0 = static_cast<int64_t>(i) * rows;
    if (lin->weight.data_ptr() != wbase + r0 * adaln_w_.stride(0) * adaln_w_.element_size() ||
        lin->bias.data_ptr() != bbase + r0 * adaln_b_.element_size() || lin->weight.size(0) != rows)
      return false;  // moved or cast since stacking (to() replaces each parameter's data)
  }
  return true;
}

torch::Tensor DiTImpl::forward_with_cfg(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y,
                                        double cfg_scale, bool guide_all_channels) {
  MOH_CHECK(x.size(0) % 2 == 0, "forward_with_cfg needs an even batch [conditional; unconditional], got ",
            x.size(0));
  const int64_t n = x.size(0) / 2;
  auto half = x.slice(0, 0, n);
  auto out = forward(torch::cat({half, half}, 0), t, y);  // [2n, out, H, W]
  // Official: guidance on channels [0, 3) only ("exact reproducibility"); standard variant: [0, in_channels).
  const int64_t g = std::min<int64_t>(guide_all_channels ? cfg_.in_channels : 3, out.size(1));
  auto eps = out.slice(1, 0, g);
  auto cond = eps.slice(0, 0, n), uncond = eps.slice(0, n, 2 * n);
  auto guided = uncond + cfg_scale * (cond - uncond);  // [n, g, H, W]
  return torch::cat({torch::cat({guided, guided}, 0), out.slice(1, g)}, 1);
}

void load_dit_weights(DiT& model, const std::string& safetensors_path) {
  WeightsFile file(safetensors_path);  // safetensors or a PyTorch checkpoint (its "ema" is picked), by content
  LoadOptions o;
  // A converted training checkpoint may keep the EMA copy under "ema." (find_model uses it) next to "model.".
  bool has_ema = false;
  for (const auto& n : file.names()) has_ema = has_ema || n.rfind("ema.", 0) == 0;
  if (has_ema) {
    o.strip_prefixes = {"ema."};
    o.ignore_prefixes = {"model.", "opt.", "args"};
  } else {
    o.strip_prefixes = {"module."};
  }
  o.source = "'" + safetensors_path + "' (model " + model->config().name + ")";
  load_weights_into(*model, file, o);
}

DiT build_dit(const DiTConfig& cfg, const std::string& weights, const torch::Device& device, torch::Dtype dtype) {
  DiT model(cfg);
  if (!weights.empty()) load_dit_weights(model, weights);
  model->to(device, dtype);
  model->eval();
  return model;
}

std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> make_dit_denoiser(DiT model, torch::Tensor y,
                                                                                          DenoiserOptions options) {
  return [model, y, options](const torch::Tensor& x, const torch::Tensor& t) mutable {
    const auto& w = model->pos_embed;
    auto xin = x.to(w.device(), w.scalar_type());
    auto tin = t.to(w.device());
    auto yin = y.to(w.device());
    auto out = options.use_cfg ? model->forward_with_cfg(xin, tin, yin, options.cfg_scale, options.guide_all_channels)
                               : model->forward(xin, tin, yin);
    return out.to(x.device(), x.scalar_type());
  };
}

}  // namespace moh::dit
