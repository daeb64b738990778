// MoH-ViT routing on one image (moh-routes): the gates of every attention layer of a MoH-TransNeXt for one
// preprocessed input, as per-layer statistics with gate maps over each stage's token grid (common/routes/stats.h),
// plus the layer table moh-eval --routes-stats accumulates per class.
// No official counterpart (the official MoH-ViT/attention.py computes these gates and discards them); uses the
// gate recorder of vit/model.h (TransNeXtImpl::set_gate_recorder), so it sees exactly the gates the model ran with,
// on whichever attention path (fused CPU kernel or LibTorch reference) runs.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "common/image/image_io.h"
#include "common/routes/stats.h"
#include "vit/classifier.h"
#include "vit/config.h"

namespace moh::vit {

// Every attention layer in forward order: "block{s}.{j}" (s = 1..4 as the official names), its gate
// configuration and its stage's token grid (resolution(s-1) squared).
std::vector<RouteLayer> vit_route_layers(const ViTConfig& cfg);

struct ViTRoutes {
  torch::Tensor input;                  // [in_chans, S, S] float32: the preprocessed picture the model saw
  std::vector<RouteLayerStats> layers;  // every attention layer in forward order, with gate maps
  std::vector<ClassPrediction> top;     // the model's top predictions for the picture
};

// Preprocesses `image` with the classifier's own transform, runs the model once with a gate recorder installed and
// collects every layer's gates. `topk` predictions are kept.
ViTRoutes vit_routes(Classifier& clf, const ImageU8& image, int topk = 3);

// An empty per-class accumulator for moh-eval --routes-stats (routed layers of cfg, cfg.num_classes classes).
RouteClassStats vit_route_class_stats(const ViTConfig& cfg);

}  // namespace moh::vit
