// Continuous relative position bias (CPB) of TransNeXt: the log-spaced relative coordinate table + index
// (official `get_relative_position_cpb` in SkyworkAI/MoH MoH-ViT/transnext.py, spec/moh-vit.md §3.3) and the
// bias MLP evaluation shared by Attention and AggregatedAttention. Also a small helper that keeps constant
// tables (built once on the CPU) on the device/dtype of the activations.
#pragma once
#include <torch/torch.h>

#include <array>
#include <utility>
#include <vector>

namespace moh::vit {

using Size2 = std::array<int64_t, 2>;  // (rows, cols)

struct CpbTables {
  torch::Tensor index;   // [Nq*Nk] int64: row of `coords` for (query n, key m) at n*Nk + m
  torch::Tensor coords;  // [U, 2] float32: unique (h, w) coordinates, sorted rows, after sign*log2(|r|+1)/log2(8)
  int64_t num_queries = 0, num_keys = 0;
};

// query: token grid; key: pooled key grid (or the token grid for full attention); pretrain: the grid that
// coordinates are normalised by (official pretrain_size // 2^(s+2)). Rows are de-duplicated exactly as
// torch.unique(dim=0, sorted=True, return_inverse=True) does, so the tables equal the official buffers.
CpbTables relative_position_cpb(const Size2& query, const Size2& key, const Size2& pretrain);

// bias[h, Nq, Nk] = cpb_fc2(relu(cpb_fc1(coords)))ᵀ[:, index]: computed in float32, returned in the fc weights'
// dtype.
torch::Tensor cpb_bias(const CpbTables& t, torch::nn::Linear& fc1, torch::nn::Linear& fc2);

// cpb_bias() for one module, reused across forward passes while gradients are off (inference): the bias depends only
// on the tables and the cpb_fc1/cpb_fc2 weights, so it is recomputed when any of them changes (storage, device,
// dtype or in-place version, e.g. after loading weights) and always when gradients are on (training).
class CachedCpbBias {
 public:
  torch::Tensor operator()(const CpbTables& t, torch::nn::Linear& fc1, torch::nn::Linear& fc2);

 private:
  torch::Tensor bias_;
  std::vector<std::pair<const void*, int64_t>> key_;
};

// A constant tensor built once (CPU) and handed out on the device (and, for floating point, dtype) that a forward
// pass runs in; the converted copy is cached. Not thread-safe: one forward at a time per module.
class DeviceConstant {
 public:
  DeviceConstant() = default;
  explicit DeviceConstant(torch::Tensor t) : host_(std::move(t)) {}
  const torch::Tensor& host() const { return host_; }
  // `like` supplies the device and, when both are floating point, the dtype.
  const torch::Tensor& like(const torch::Tensor& like);
  // On `device`, in the host tensor's own dtype.
  const torch::Tensor& on(const torch::Device& device);

 private:
  const torch::Tensor& get(const torch::Device& device, torch::ScalarType dtype);
  torch::Tensor host_, cached_;
};

// The CPB tables of one stage, kept per device (index and coords travel together).
class DeviceCpbTables {
 public:
  DeviceCpbTables() = default;
  explicit DeviceCpbTables(CpbTables t) : host_(std::move(t)), index_(host_.index), coords_(host_.coords) {}
  const CpbTables& host() const { return host_; }
  // Tables on `like`'s device (coords stay float32: cpb_bias evaluates its MLP in float32).
  CpbTables like(const torch::Tensor& like);

 private:
  CpbTables host_;
  DeviceConstant index_, coords_;
};

}  // namespace moh::vit
