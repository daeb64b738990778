// Routing statistics (see stats.h). No official counterpart; counts come straight from the gates of
// common/moh/gates.h: a (token, head) pair is computed iff its gate is non-zero (spec/moh-attention.md §7).
#include "common/routes/stats.h"

#include <cmath>
#include <sstream>

#include "common/io/atomic_file.h"
#include "common/io/csv.h"
#include "common/dist/distributed.h"
#include "common/error.h"

namespace moh {

namespace {

void check_gates(const RouteLayer& l, const torch::Tensor& gates) {
  MOH_CHECK(gates.dim() == 3 && gates.size(1) == l.tokens() && gates.size(2) == l.gates.num_heads, "layer '",
            l.name, "': expected gates [B, ", l.tokens(), ", ", l.gates.num_heads, "] (", l.grid_h, "x", l.grid_w,
            " tokens), got ", gates.sizes());
}

}  // namespace

// ------------------------------------------------------------------------------------------- RouteLayerStats
RouteLayerStats::RouteLayerStats(RouteLayer layer, bool keep_maps) : layer_(std::move(layer)), keep_maps_(keep_maps) {
  const auto h = layer_.gates.num_heads;
  selected_ = torch::zeros({h}, torch::kInt64);
  gate_sum_ = torch::zeros({h}, torch::kFloat64);
  if (keep_maps_) map_sum_ = torch::zeros({layer_.tokens(), h}, torch::kFloat64);
}

void RouteLayerStats::add(const torch::Tensor& gates_in) {
  check_gates(layer_, gates_in);
  const auto g = gates_in.detach().to(torch::kCPU, torch::kFloat64);  // [B, N, h]
  selected_ += (g != 0).sum(std::vector<int64_t>{0, 1});                                 // [h]
  gate_sum_ += g.sum(std::vector<int64_t>{0, 1});                                        // [h]
  if (keep_maps_) map_sum_ += g.sum(0);                                // [N, h]
  const auto hs = layer_.gates.shared_head;
  if (layer_.routed() && g.size(0) > 0)
    max_routed_gate_ = std::max(max_routed_gate_, g.slice(2, hs).max().item<double>());
  images_ += g.size(0);
}

std::vector<double> RouteLayerStats::load() const {
  std::vector<double> out;
  if (!layer_.routed()) return out;
  const auto t = tokens();
  for (int64_t j = layer_.gates.shared_head; j < layer_.gates.num_heads; ++j)
    out.push_back(t ? double(selected_[j].item<int64_t>()) / double(t) : 0.0);
  return out;
}

std::vector<double> RouteLayerStats::mean_gate() const {
  std::vector<double> out;
  const auto t = tokens();
  for (int64_t j = 0; j < layer_.gates.num_heads; ++j) out.push_back(t ? gate_sum_[j].item<double>() / double(t) : 0.0);
  return out;
}

int64_t RouteLayerStats::computed_pairs() const { return selected_.sum().item<int64_t>(); }

double RouteLayerStats::computed_fraction() const {
  const auto dense = tokens() * layer_.gates.num_heads;
  return dense ? double(computed_pairs()) / double(dense) : 0.0;
}

double RouteLayerStats::expected_fraction() const {
  const auto& c = layer_.gates;
  return layer_.routed() ? double(c.shared_head + c.routed_head) / double(c.num_heads) : 1.0;
}

bool RouteLayerStats::computed_matches_expected() const {
  const auto& c = layer_.gates;
  const int64_t per_token = layer_.routed() ? c.shared_head + c.routed_head : c.num_heads;
  return computed_pairs() == per_token * tokens();
}

double RouteLayerStats::load_entropy() const {
  const auto l = load();
  double total = 0;
  for (double v : l) total += v;
  if (l.empty() || total <= 0) return 0.0;
  if (l.size() == 1) return 1.0;
  double h = 0;
  for (double v : l)
    if (v > 0) h -= (v / total) * std::log(v / total);
  return h / std::log(double(l.size()));
}

torch::Tensor RouteLayerStats::mean_map(int64_t head) const {
  MOH_CHECK(keep_maps_, "layer '", layer_.name, "': gate maps were not kept (internal error)");
  MOH_CHECK(head >= 0 && head < layer_.gates.num_heads, "layer '", layer_.name, "' has no head ", head);
  auto m = map_sum_.select(1, head) / double(std::max<int64_t>(images_, 1));  // [N]
  return m.to(torch::kFloat32).view({layer_.grid_h, layer_.grid_w});          // [N] -> [grid_h, grid_w]
}

nlohmann::json RouteLayerStats::to_json() const {
  const auto& c = layer_.gates;
  nlohmann::json j = {{"name", layer_.name},
                      {"heads", c.num_heads},
                      {"shared", c.shared_head},
                      {"routed", layer_.routed() ? c.experts() : 0},
                      {"top_k", c.routed_head},
                      {"grid", {layer_.grid_h, layer_.grid_w}},
                      {"images", images_},
                      {"tokens", tokens()}};
  auto heads = nlohmann::json::array();
  const auto l = load();
  const auto mg = mean_gate();
  for (size_t k = 0; k < l.size(); ++k) {
    const auto head = c.shared_head + (int64_t)k;
    heads.push_back({{"head", head}, {"load", l[k]}, {"mean_gate", mg[size_t(head)]}});
  }
  j["routed_heads"] = heads;
  j["skipping_ratio"] = computed_fraction();
  j["skipping_ratio_expected"] = expected_fraction();
  j["skipping_ratio_matches"] = computed_matches_expected();
  j["load_entropy"] = load_entropy();
  if (layer_.routed()) j["max_routed_gate"] = max_routed_gate_;
  return j;
}

// ------------------------------------------------------------------------------------------- RouteClassStats
RouteClassStats::RouteClassStats(std::vector<RouteLayer> layers, int64_t num_classes) : num_classes_(num_classes) {
  MOH_CHECK(num_classes > 0, "routing statistics per class need a model with classes (got ", num_classes, ")");
  for (auto& l : layers) {
    if (!l.routed()) continue;
    selected_.push_back(torch::zeros({num_classes, l.gates.num_heads}, torch::kInt64));
    images_.push_back(torch::zeros({num_classes}, torch::kInt64));
    layers_.push_back(std::move(l));
  }
}

GateRecorder RouteClassStats::recorder(std::vector<int64_t> labels) {
  return [this, labels = std::move(labels)](const std::string& layer, const torch::Tensor& gates) {
    add(layer, gates, labels);
  };
}

void RouteClassStats::add(const std::string& layer, const torch::Tensor& gates, const std::vector<int64_t>& labels) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].name != layer) continue;
    check_gates(layers_[i], gates);
    MOH_CHECK(gates.size(0) == (int64_t)labels.size(), "layer '", layer, "': ", gates.size(0), " images but ",
              labels.size(), " labels (internal error)");
    for (auto c : labels)
      MOH_CHECK(c >= 0 && c < num_classes_, "label ", c, " is outside the model's ", num_classes_, " classes");
    auto idx = torch::tensor(labels, torch::kInt64);
    auto per_image = (gates.detach() != 0).sum(1).to(torch::kCPU, torch::kInt64);  // [B, N, h] -> [B, h]
    selected_[i].index_add_(0, idx, per_image);
    images_[i].index_add_(0, idx, torch::ones({(int64_t)labels.size()}, torch::kInt64));
    return;
  }
  // Layers without routed heads are not tracked.
}

int64_t RouteClassStats::images(size_t layer, int64_t cls) const { return images_.at(layer)[cls].item<int64_t>(); }

double RouteClassStats::load(size_t layer, int64_t cls, int64_t head) const {
  const auto n = images(layer, cls) * layers_.at(layer).tokens();
  return n ? double(selected_[layer][cls][head].item<int64_t>()) / double(n) : 0.0;
}

void RouteClassStats::all_reduce(dist::Group& group) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    group.all_reduce_sum(selected_[i], "summing the routing counts of layer " + layers_[i].name);
    group.all_reduce_sum(images_[i], "summing the routing image counts of layer " + layers_[i].name);
  }
}

void RouteClassStats::write_csv(const std::string& path, const std::function<std::string(int64_t)>& class_name) const {
  std::ostringstream os;
  os << "class_index,class_name,layer,head,heads,shared,top_k,images,load\n";
  for (int64_t c = 0; c < num_classes_; ++c)
    for (size_t i = 0; i < layers_.size(); ++i) {
      const auto& g = layers_[i].gates;
      const auto n = images(i, c);
      if (n == 0) continue;
      for (int64_t head = g.shared_head; head < g.num_heads; ++head) {
        char v[32];
        std::snprintf(v, sizeof v, "%.6f", load(i, c, head));
        os << c << "," << csv_field(class_name(c)) << "," << layers_[i].name << "," << head << "," << g.num_heads
           << "," << g.shared_head << "," << g.routed_head << "," << n << "," << v << "\n";
      }
    }
  write_file_atomic(path, os.str());
}

}  // namespace moh
