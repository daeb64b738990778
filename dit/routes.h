// MoH-DiT routing over one sampling run (moh-routes): the gates of every attention layer of the conditional pass,
// per step, summed into a few timestep bands (early = noisiest steps first, middle, late) with gate maps over the
// patch grid (common/routes/stats.h), plus the generated image.
// No official counterpart (MoH-DiT/models.py computes these gates and discards them); sampling is
// dit/generate.h's generate_images unchanged, the gates come from the recorder of dit/model.h
// (DiTImpl::set_gate_recorder), so they are exactly those the sampler ran with.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "common/routes/stats.h"
#include "dit/config.h"
#include "dit/generate.h"
#include "dit/model.h"
#include "dit/vae.h"

namespace moh::dit {

// Every attention layer: "blocks.{i}", its gate configuration, the patch grid (grid_size squared).
std::vector<RouteLayer> dit_route_layers(const DiTConfig& cfg);

struct DiTRouteBand {
  std::string name;                     // "early", "middle", "late" for three bands, else "band<k>"
  int64_t first_step = 0, last_step = 0;        // sampler calls [first, last] (0 = the first, noisiest step)
  int64_t first_timestep = 0, last_timestep = 0;  // the original timesteps (0..999) of those steps
  std::vector<RouteLayerStats> layers;  // every layer; images() counts the steps of the band
};

struct DiTRoutes {
  std::vector<DiTRouteBand> bands;
  torch::Tensor image_u8;  // [H, W, 3] uint8: the generated image
  GenerateStats stats;
};

// Generates one image (p.labels must hold exactly one label) and records the conditional pass's gates at every
// step into `bands` equal bands of the p.steps sampler steps. Model (and VAE) must be on `device`.
DiTRoutes dit_routes(DiT& model, Vae* vae, const GenerateParams& p, const torch::Device& device, int64_t bands = 3);

}  // namespace moh::dit
