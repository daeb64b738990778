// Routing statistics of MoH attention layers, one implementation for MoH-ViT and MoH-DiT: per routed head its load
// (the fraction of tokens whose top-k selected it), the fraction of (token, head) pairs actually computed versus
// dense (the "skipping ratio"; the sparse kernels compute exactly the pairs with a non-zero gate), the normalised
// load-balance entropy, mean gate maps over the token grid, and per-class loads for a dataset.
// No official counterpart: the official code only routes (MoH-DiT/models.py, MoH-ViT/attention.py); the paper's
// head-load figures are what these numbers reproduce. Gates come from common/moh/gates.h (spec/moh-attention.md §2,
// §7: shared gates are positive, unselected routed gates exactly 0).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/moh/gates.h"

namespace moh {

namespace dist {
class Group;
}

// Sees one attention layer's gates during a forward pass: the layer's name ("block2.0", "blocks.3") and its gates
// [B, N, h]. Models call it only when one is installed (TransNeXtImpl / DiTImpl::set_gate_recorder).
using GateRecorder = std::function<void(const std::string& layer, const torch::Tensor& gates)>;

// Installs `recorder` on a model (anything with set_gate_recorder) and removes it again when destroyed.
template <class Model>
class ScopedGateRecorder {
 public:
  ScopedGateRecorder(Model& model, GateRecorder recorder) : model_(model) {
    model_->set_gate_recorder(std::move(recorder));
  }
  ~ScopedGateRecorder() { model_->set_gate_recorder({}); }
  ScopedGateRecorder(const ScopedGateRecorder&) = delete;
  ScopedGateRecorder& operator=(const ScopedGateRecorder&) = delete;

 private:
  Model& model_;
};

// One attention layer as routing sees it.
struct RouteLayer {
  std::string name;      // the model's block name
  MoHGateConfig gates;   // heads h, shared hs, top-k hr
  int64_t grid_h = 0, grid_w = 0;  // token grid (N = grid_h * grid_w, row-major)
  bool routed() const { return gates.routed_head > 0; }
  int64_t tokens() const { return grid_h * grid_w; }
};

// Gate statistics of one layer over every token it was shown (any number of images or sampler steps).
class RouteLayerStats {
 public:
  // keep_maps: also sum the gates per token, for mean_map().
  RouteLayerStats(RouteLayer layer, bool keep_maps);
  // gates: [B, N, h] (B images, N = grid tokens), any device/dtype. Throws moh::Error on a shape mismatch.
  void add(const torch::Tensor& gates);

  const RouteLayer& layer() const { return layer_; }
  int64_t images() const { return images_; }
  int64_t tokens() const { return images_ * layer_.tokens(); }
  // [E]: fraction of tokens whose top-k selected routed candidate j (head hs + j). Sums to hr.
  std::vector<double> load() const;
  // [h]: mean gate value of each head over the tokens.
  std::vector<double> mean_gate() const;
  // Pairs with a non-zero gate: what the sparse kernels compute.
  int64_t computed_pairs() const;
  // computed_pairs / (tokens * h): the skipping ratio, a fraction in [0, 1].
  double computed_fraction() const;
  // What the configuration promises: (hs + hr) / h for routed layers, 1 for layers without routed heads.
  double expected_fraction() const;
  // computed_pairs == (hs + hr) * tokens exactly (h * tokens for layers without routed heads).
  bool computed_matches_expected() const;
  // Shannon entropy of the load distribution p_j = load_j / sum(load), divided by ln(E): 1 = every routed head
  // equally used, 0 = one head takes all. 1 when E == 1; 0 for layers without routed heads or tokens.
  double load_entropy() const;
  // [grid_h, grid_w] float32: the mean gate of `head` per token over the images (needs keep_maps).
  torch::Tensor mean_map(int64_t head) const;
  // The largest gate any token gave any routed head (the colour scale of the maps).
  double max_routed_gate() const { return max_routed_gate_; }

  // {"name", "heads", "shared", "routed", "top_k", "grid", "images", "tokens", "routed_heads": [{"head", "load",
  // "mean_gate"}], "skipping_ratio", "skipping_ratio_expected", "skipping_ratio_matches", "load_entropy"}.
  nlohmann::json to_json() const;

 private:
  RouteLayer layer_;
  bool keep_maps_;
  int64_t images_ = 0;
  double max_routed_gate_ = 0;
  torch::Tensor selected_;  // [h] int64: tokens with a non-zero gate per head
  torch::Tensor gate_sum_;  // [h] float64
  torch::Tensor map_sum_;   // [N, h] float64 (keep_maps)
};

// Per-class loads over a dataset (moh-eval --routes-stats): for every class and routed layer, the fraction of the
// class's tokens that selected each routed head (= the mean over its images of each image's load).
class RouteClassStats {
 public:
  RouteClassStats(std::vector<RouteLayer> layers, int64_t num_classes);
  // A recorder that adds each routed layer's gates [B, N, h] under the images' labels (size B).
  GateRecorder recorder(std::vector<int64_t> labels);
  void add(const std::string& layer, const torch::Tensor& gates, const std::vector<int64_t>& labels);

  const std::vector<RouteLayer>& layers() const { return layers_; }
  int64_t images(size_t layer, int64_t cls) const;
  double load(size_t layer, int64_t cls, int64_t head) const;  // head: index within the layer (hs <= head < h)
  // Sums the counts over the ranks of a multi-process run (every rank calls it).
  void all_reduce(dist::Group& group);
  // CSV, one row per (class with images, routed layer, routed head):
  // class_index,class_name,layer,head,heads,shared,top_k,images,load
  void write_csv(const std::string& path, const std::function<std::string(int64_t)>& class_name) const;

 private:
  std::vector<RouteLayer> layers_;  // routed layers only
  int64_t num_classes_;
  std::vector<torch::Tensor> selected_;  // per layer [classes, h] int64
  std::vector<torch::Tensor> images_;    // per layer [classes] int64
};

}  // namespace moh
