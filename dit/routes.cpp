// MoH-DiT routing over one sampling run (see routes.h). No official counterpart; gates as MoH-DiT/models.py
// `MoHAttention` (spec/moh-attention.md §2), sampling as sample.py via generate_images.
#include "dit/routes.h"

#include "common/error.h"
#include "dit/diffusion.h"

namespace moh::dit {

std::vector<RouteLayer> dit_route_layers(const DiTConfig& cfg) {
  std::vector<RouteLayer> out;
  for (int64_t i = 0; i < cfg.depth; ++i) {
    RouteLayer l;
    l.name = "blocks." + std::to_string(i);
    l.gates = cfg.gate_config(i);
    l.grid_h = l.grid_w = cfg.grid_size();
    out.push_back(l);
  }
  return out;
}

DiTRoutes dit_routes(DiT& model, Vae* vae, const GenerateParams& p_in, const torch::Device& device, int64_t bands) {
  MOH_CHECK(model->config().moh, "'", model->config().name, "' is a dense DiT: every token uses every head, so there ",
            "is no routing to map (moh-convert --to-moh makes a MoH model of it)");
  MOH_CHECK(p_in.labels.size() == 1, "routing maps follow one image: give exactly one class (got ",
            p_in.labels.size(), ")");
  MOH_CHECK(p_in.steps >= 1, "--steps must be at least 1, got ", p_in.steps);
  MOH_CHECK(bands >= 1 && bands <= p_in.steps, "--bands must be between 1 and the ", p_in.steps,
            " sampling steps, got ", bands);
  const auto& cfg = model->config();
  const auto layers = dit_route_layers(cfg);
  const auto timestep_map = GaussianDiffusion::create(std::to_string(p_in.steps), cfg.learn_sigma).timestep_map;
  const int64_t N = p_in.steps;

  DiTRoutes r;
  for (int64_t b = 0; b < bands; ++b) {
    DiTRouteBand band;
    static const char* const kThree[] = {"early", "middle", "late"};
    band.name = bands == 3 ? std::string(kThree[b]) : "band" + std::to_string(b);
    band.first_step = (b * N + bands - 1) / bands;  // first call c with c * bands / N == b
    band.last_step = ((b + 1) * N + bands - 1) / bands - 1;
    // call c runs respaced index k = N-1-c (sampler order: noisiest first).
    band.first_timestep = timestep_map.at(size_t(N - 1 - band.first_step));
    band.last_timestep = timestep_map.at(size_t(N - 1 - band.last_step));
    for (const auto& l : layers) band.layers.emplace_back(l, /*keep_maps=*/true);
    r.bands.push_back(std::move(band));
  }

  int64_t step = 0;
  GenerateParams p = p_in;
  p.on_step = [&](int64_t n) {
    ++step;
    if (p_in.on_step) p_in.on_step(n);
  };
  {
    ScopedGateRecorder<DiT> rec(model, [&](const std::string& name, const torch::Tensor& gates) {
      auto& band = r.bands.at(size_t(std::min<int64_t>(step * bands / N, bands - 1)));
      for (auto& st : band.layers)
        if (st.layer().name == name) return st.add(gates.narrow(0, 0, 1));  // row 0: the conditional pass
      throw Error("MoH-DiT reported gates of an unknown layer '" + name + "' (internal error)");
    });
    r.stats = generate_images(model, vae, p, device,
                              [&](const GeneratedBatch& b) { r.image_u8 = b.images_u8[0].clone(); });
  }
  MOH_CHECK(step == N, "the sampler ran ", step, " steps, expected ", N, " (internal error)");
  MOH_CHECK(r.image_u8.defined(), "generation returned no image (internal error)");
  return r;
}

}  // namespace moh::dit
