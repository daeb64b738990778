// Dense -> MoH router initialisation (see dense_to_moh.h). No official counterpart.
#include "common/moh/dense_to_moh.h"

#include <ATen/CPUGeneratorImpl.h>

#include <map>

#include "common/error.h"

namespace moh {

std::vector<std::pair<std::string, torch::Tensor>> add_router_layers(
    const std::vector<std::pair<std::string, torch::Tensor>>& dense, const std::vector<AttentionLayerGates>& layers,
    uint64_t seed, double wg_std) {
  std::map<std::string, torch::Tensor> by_name(dense.begin(), dense.end());
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const auto& nt : dense)
    for (const char* router : {".wg.weight", ".wg_0.weight", ".wg_1.weight"})
      MOH_CHECK(!ends_with(nt.first, router), "dense -> MoH: the input already has router weights ('", nt.first,
                "'): it is a MoH model, not a dense one");
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  std::map<std::string, std::vector<std::pair<std::string, torch::Tensor>>> added;  // proj key -> router tensors
  for (const auto& l : layers) {
    MOH_CHECK(!l.gates.dense, "dense -> MoH: the target layer '", l.prefix, "' is dense (the target config must be "
              "a MoH one: moh true, shared_head / routed_head per layer)");
    const std::string proj = l.prefix + ".proj.weight";
    auto it = by_name.find(proj);
    MOH_CHECK(it != by_name.end(), "dense -> MoH: the input has no '", proj, "' (the target config's layers do not "
              "match the input's: check depth / depths)");
    const int64_t C = it->second.size(0);
    const auto opts = it->second.options();
    auto& out = added[proj];
    if (l.gates.has_wg())
      out.emplace_back(l.prefix + ".wg.weight",
                       (torch::randn({l.gates.experts(), C}, gen, torch::kFloat64) * wg_std).to(opts));
    if (l.gates.has_wg0()) out.emplace_back(l.prefix + ".wg_0.weight", torch::zeros({2, C}, opts));
    if (l.gates.has_wg1()) out.emplace_back(l.prefix + ".wg_1.weight", torch::zeros({l.gates.shared_head, C}, opts));
  }
  // Official registration order: the router layers follow proj (weight and bias).
  std::vector<std::pair<std::string, torch::Tensor>> result;
  std::string pending;  // proj weight seen, waiting for its bias
  auto flush = [&] {
    if (pending.empty()) return;
    for (auto& nt : added[pending]) result.push_back(nt);
    added.erase(pending);
    pending.clear();
  };
  for (const auto& [name, t] : dense) {
    const bool is_proj_bias = !pending.empty() && name == pending.substr(0, pending.size() - 6) + "bias";
    if (!is_proj_bias) flush();
    result.emplace_back(name, t);
    if (added.count(name)) pending = name;
  }
  flush();
  MOH_CHECK(added.empty(), "internal: router layers left unplaced");
  return result;
}

}  // namespace moh
