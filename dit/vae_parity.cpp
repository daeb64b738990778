// Parity runner for family "vae" (golden case 5: diffusers AutoencoderKL decode, written by gen/gen_vae.py):
// rebuilds the decoder from the file's config, loads its weights strictly and compares the output, every stored
// intermediate and (when present) the DiT -> VAE pipeline step of sample.py.
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "dit/parity.h"
#include "dit/vae.h"

namespace moh::dit {
namespace {

std::vector<ParityCheck> run_vae_parity(const GoldenFile& g) {
  const auto& cfg = g.config();
  MOH_CHECK(cfg.contains("vae"), "reference file '", g.path(), "' (family vae) has no 'vae' entry in its config");
  auto vc = cfg["vae"];
  if (cfg.contains("scaling_factor")) vc["scaling_factor"] = cfg["scaling_factor"];
  vc["name"] = "golden";
  Vae vae(VaeConfig::from_json(vc));
  load_vae_weights(vae, g.weights(), "'" + g.path() + "'");
  vae->eval();
  torch::NoGradGuard no_grad;

  std::vector<ParityCheck> checks;
  std::map<std::string, torch::Tensor> trace;
  auto out = vae->decode_scaled(g.get("in.z"), &trace);
  add_check(checks, g, "out.sample", out);
  for (const auto& [name, t] : trace) add_check(checks, g, "mid." + name, t);

  if (g.has("in.pipeline_dit_samples")) {
    const auto samples = g.get("in.pipeline_dit_samples");
    add_check(checks, g, "in.pipeline_z", samples / vae->config().scaling_factor);
    const auto tol = g.tolerance_from("pipeline_tolerance", g.tolerance());
    if (g.has("out.pipeline_sample"))
      checks.push_back({"out.pipeline_sample", vae->decode(samples), g.get("out.pipeline_sample"), tol});
  }
  return checks;
}

}  // namespace

std::map<std::string, ParityRunner> vae_parity_runners() { return {{"vae", run_vae_parity}}; }

}  // namespace moh::dit
