// CPB tables and bias: mirrors `get_relative_position_cpb` (MoH-ViT/transnext.py) and the `pool_bias` / `rel_bias`
// lines of attention_native.py / attention.py. Same float32 op order as the official code so the de-duplicated
// table (torch.unique over float rows) has the same rows in the same order.
#include "vit/cpb.h"

#include "common/error.h"

namespace moh::vit {
namespace {

// Official: F.adaptive_avg_pool1d(arange(q), k): entry i is the mean of positions [floor(i*q/k), ceil((i+1)*q/k)).
torch::Tensor pooled_axis(int64_t q, int64_t k) {
  auto axis = torch::arange(q, torch::kFloat32);
  return torch::adaptive_avg_pool1d(axis.view({1, 1, q}), {k}).view({k});  // [1,1,q] -> [1,1,k] -> [k]
}

}  // namespace

CpbTables relative_position_cpb(const Size2& query, const Size2& key, const Size2& pretrain) {
  MOH_CHECK(query[0] > 0 && query[1] > 0 && key[0] > 0 && key[1] > 0, "CPB tables: empty query grid ", query[0], "x",
            query[1], " or key grid ", key[0], "x", key[1]);
  MOH_CHECK(key[0] <= query[0] && key[1] <= query[1], "CPB tables: key grid ", key[0], "x", key[1],
            " is larger than the query grid ", query[0], "x", query[1]);
  MOH_CHECK(pretrain[0] > 1 && pretrain[1] > 1, "CPB tables: pretrain grid ", pretrain[0], "x", pretrain[1],
            " must be at least 2x2 (coordinates are divided by pretrain - 1)");
  torch::NoGradGuard no_grad;
  auto grid = [](const torch::Tensor& rows, const torch::Tensor& cols) {
    auto g = torch::meshgrid({rows, cols}, "ij");  // [R, C] each
    return std::make_pair(g[0].reshape({-1}), g[1].reshape({-1}));  // row-major flatten: n = r*C + c
  };
  auto [kh, kw] = grid(pooled_axis(query[0], key[0]), pooled_axis(query[1], key[1]));
  auto [qh, qw] = grid(torch::arange(query[0], torch::kFloat32), torch::arange(query[1], torch::kFloat32));
  // [Nq, Nk] each; divide then multiply, like the official expression.
  auto rh = (qh.unsqueeze(1) - kh.unsqueeze(0)) / static_cast<double>(pretrain[0] - 1) * 8;
  auto rw = (qw.unsqueeze(1) - kw.unsqueeze(0)) / static_cast<double>(pretrain[1] - 1) * 8;
  auto pairs = torch::stack({rh, rw}, -1).view({-1, 2});  // [Nq, Nk, 2] -> [Nq*Nk, 2]
  auto uniq = torch::unique_dim(pairs, 0, /*sorted=*/true, /*return_inverse=*/true);
  auto table = std::get<0>(uniq);  // [U, 2]
  CpbTables t;
  t.index = std::get<1>(uniq).to(torch::kInt64).reshape({-1});  // [Nq*Nk]
  t.coords = torch::sign(table) * torch::log2(torch::abs(table) + 1.0) / torch::log2(torch::tensor(8.0f));
  t.num_queries = query[0] * query[1];
  t.num_keys = key[0] * key[1];
  return t;
}

torch::Tensor cpb_bias(const CpbTables& t, torch::nn::Linear& fc1, torch::nn::Linear& fc2) {
  // Evaluated in float32 whatever the model dtype: the coordinates need more than bf16's 8 mantissa bits, and the
  // MLP is tiny and batch-independent. Identical to the official computation in float32.
  const auto f32 = [](const torch::Tensor& w) { return w.to(torch::kFloat32); };
  auto hidden = torch::relu(torch::linear(t.coords.to(torch::kFloat32), f32(fc1->weight), f32(fc1->bias)));
  auto per_row = torch::linear(hidden, f32(fc2->weight), f32(fc2->bias));  // [U, h]
  return per_row.t()
      .index_select(1, t.index)
      .view({-1, t.num_queries, t.num_keys})  // [h, U] -> [h, Nq*Nk] -> [h, Nq, Nk]
      .to(fc2->weight.scalar_type());
}

torch::Tensor CachedCpbBias::operator()(const CpbTables& t, torch::nn::Linear& fc1, torch::nn::Linear& fc2) {
  if (torch::GradMode::is_enabled()) {
    bias_ = torch::Tensor();
    return cpb_bias(t, fc1, fc2);
  }
  std::vector<std::pair<const void*, int64_t>> key;
  for (const auto* w : {&fc1->weight, &fc1->bias, &fc2->weight, &fc2->bias})
    key.emplace_back(w->data_ptr(), (int64_t)w->_version());
  key.emplace_back(t.index.data_ptr(), (int64_t)t.index.numel());
  key.emplace_back(t.coords.data_ptr(), (int64_t)t.coords.numel());
  if (!bias_.defined() || key != key_) {
    bias_ = cpb_bias(t, fc1, fc2);
    key_ = std::move(key);
  }
  return bias_;
}

const torch::Tensor& DeviceConstant::get(const torch::Device& device, torch::ScalarType dtype) {
  if (!cached_.defined() || cached_.device() != device || cached_.scalar_type() != dtype)
    cached_ = host_.to(device, dtype);
  return cached_;
}

const torch::Tensor& DeviceConstant::like(const torch::Tensor& like) {
  const bool cast = host_.is_floating_point() && like.is_floating_point();
  return get(like.device(), cast ? like.scalar_type() : host_.scalar_type());
}

const torch::Tensor& DeviceConstant::on(const torch::Device& device) { return get(device, host_.scalar_type()); }

CpbTables DeviceCpbTables::like(const torch::Tensor& like) {
  CpbTables t = host_;
  t.index = index_.on(like.device());
  t.coords = coords_.on(like.device());
  return t;
}

}  // namespace moh::vit
