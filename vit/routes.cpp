// MoH-ViT routing on one image (see routes.h). No official counterpart; the gates are those of
// MoH-ViT/attention.py (spec/moh-attention.md §2), recorded from the running model.
#include "vit/routes.h"

#include "common/error.h"

namespace moh::vit {

std::vector<RouteLayer> vit_route_layers(const ViTConfig& cfg) {
  std::vector<RouteLayer> out;
  for (int s = 0; s < kNumStages; ++s)
    for (int64_t j = 0; j < cfg.depths[s]; ++j) {
      RouteLayer l;
      l.name = "block" + std::to_string(s + 1) + "." + std::to_string(j);
      l.gates.num_heads = cfg.num_heads[s];
      l.gates.shared_head = cfg.shared_head[s];
      l.gates.routed_head = cfg.routed_head[s];
      l.gates.allow_single_shared = true;
      l.gates.dense = !cfg.moh;
      l.grid_h = l.grid_w = cfg.resolution(s);
      out.push_back(l);
    }
  return out;
}

ViTRoutes vit_routes(Classifier& clf, const ImageU8& image, int topk) {
  MOH_CHECK(clf.config().moh, "'", clf.config().name, "' is a dense TransNeXt: every token uses every head, so there ",
            "is no routing to map (moh-convert --to-moh makes a MoH model of it)");
  ViTRoutes r;
  for (auto& l : vit_route_layers(clf.config())) r.layers.emplace_back(l, /*keep_maps=*/true);
  r.input = clf.preprocess(image);  // [C, S, S]
  torch::Tensor logits;
  {
    ScopedGateRecorder<TransNeXt> rec(clf.model(), [&](const std::string& name, const torch::Tensor& gates) {
      for (auto& st : r.layers)
        if (st.layer().name == name) return st.add(gates);
      throw Error("MoH-ViT reported gates of an unknown layer '" + name + "' (internal error)");
    });
    torch::NoGradGuard no_grad;
    logits = clf.logits(r.input.unsqueeze(0));  // [1, C, S, S] -> [1, classes]
  }
  for (const auto& st : r.layers)
    MOH_CHECK(st.images() == 1, "layer '", st.layer().name, "' recorded ", st.images(), " images (internal error)");
  r.top = clf.top_k(logits, topk).at(0);
  return r;
}

RouteClassStats vit_route_class_stats(const ViTConfig& cfg) {
  return RouteClassStats(vit_route_layers(cfg), cfg.num_classes);
}

}  // namespace moh::vit
