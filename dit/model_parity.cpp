// Parity runners for the MoH-DiT model families of reference files (shared/golden README cases 1-3):
// "dit_attn" (MoHAttention alone), "dit_model" (tiny DiT forward + forward_with_cfg + intermediates) and
// "dit_sampler" (DDPM / DDIM loops driving forward_with_cfg). Everything is rebuilt from the file's metadata
// config and tensors; nothing about a particular file is hard-coded.
#include <cmath>

#include "common/error.h"
#include "common/weights/state_dict.h"
#include "dit/diffusion.h"
#include "dit/model.h"
#include "dit/moh_attention.h"
#include "dit/parity.h"

namespace moh::dit {
namespace {

using nlohmann::json;

template <typename T>
T cfg_get(const GoldenFile& g, const json& j, const std::string& key) {
  MOH_CHECK(j.contains(key) && !j[key].is_null(), "reference file '", g.path(), "': metadata config has no '", key,
            "'");
  return j[key].get<T>();
}

LoadOptions golden_load_options(const GoldenFile& g) {
  LoadOptions o;
  o.source = "reference file '" + g.path() + "'";
  return o;
}

// The file's tolerance, widened to atol_rel_to_max * max|ref| for large-valued tensors (README §3).
Tolerance scaled_tolerance(const GoldenFile& g, const torch::Tensor& ref) {
  Tolerance t = g.tolerance();
  const double rel_to_max = g.tolerance_number("atol_rel_to_max", 0.0);
  if (rel_to_max > 0 && ref.numel() > 0) t.atol = std::max(t.atol, rel_to_max * ref.abs().max().item<double>());
  return t;
}

void add_scaled(std::vector<ParityCheck>& checks, const GoldenFile& g, const std::string& name,
                const torch::Tensor& ours) {
  if (!g.has(name)) return;
  auto ref = g.get(name);
  checks.push_back({name, ours, ref, scaled_tolerance(g, ref)});
}

// ------------------------------------------------------------------------------------------------ dit_attn
std::vector<ParityCheck> run_dit_attn(const GoldenFile& g) {
  const json& c = g.config();
  MoHAttentionOptions o;
  o.dim = cfg_get<int64_t>(g, c, "dim");
  o.num_heads = cfg_get<int64_t>(g, c, "num_heads");
  o.shared_head = cfg_get<int64_t>(g, c, "shared_head");
  o.routed_head = cfg_get<int64_t>(g, c, "routed_head");
  o.head_dim = c.contains("head_dim") && !c["head_dim"].is_null() ? c["head_dim"].get<int64_t>() : 0;
  o.qkv_bias = c.value("qkv_bias", true);
  o.qk_norm = c.value("qk_norm", false);
  MoHAttention attn(o);
  load_state_dict(*attn, g.weights(), golden_load_options(g));
  attn->eval();

  MoHAttentionDebug dbg;
  auto y = attn->forward(g.get("in.x"), &dbg);
  std::vector<ParityCheck> checks;
  add_check(checks, g, "out.y", y);
  add_check(checks, g, "mid.gates", dbg.gates);
  if (dbg.router_probs.defined()) add_check(checks, g, "mid.router_probs", dbg.router_probs);
  if (dbg.topk_indices.defined()) add_check(checks, g, "mid.router_topk_indices", dbg.topk_indices);
  return checks;
}

// ------------------------------------------------------------------------------------------------ dit_model
DiT build_golden_dit(const GoldenFile& g) {
  MOH_CHECK(g.config().contains("model"), "reference file '", g.path(), "': metadata config has no 'model'");
  auto cfg = DiTConfig::from_json(g.config()["model"], "reference file '" + g.path() + "' config.model");
  DiT model(cfg);
  load_state_dict(*model, g.weights(), golden_load_options(g));
  model->eval();
  return model;
}

std::vector<ParityCheck> run_dit_model(const GoldenFile& g) {
  DiT model = build_golden_dit(g);
  std::vector<ParityCheck> checks;
  DiTDebug dbg;
  auto y = model->forward(g.get("in.x"), g.get("in.t"), g.get("in.y"), &dbg);
  add_check(checks, g, "out.y", y);
  // Every intermediate the file holds and the model records (mid.<name>).
  for (const auto& name : g.names_with_prefix("mid.")) {
    auto it = dbg.tensors.find(name.substr(4));
    if (it != dbg.tensors.end()) add_check(checks, g, name, it->second);
  }
  if (g.has("in.cfg_x")) {
    const double scale = g.has("in.cfg_scale") ? g.get("in.cfg_scale").item<double>()
                                               : cfg_get<double>(g, g.config()["cfg"], "cfg_scale");
    auto cx = g.get("in.cfg_x"), ct = g.get("in.cfg_t"), cy = g.get("in.cfg_y");
    add_check(checks, g, "out.cfg_y", model->forward_with_cfg(cx, ct, cy, scale));
    if (g.has("mid.cfg_plain_forward")) add_check(checks, g, "mid.cfg_plain_forward", model->forward(cx, ct, cy));
  }
  return checks;
}

// ------------------------------------------------------------------------------------------------ dit_sampler
struct RunSpec {
  std::string name;
  bool ddim = false;
  double eta = 0.0;
};

// Reads the runs from the tensors (out.<run>.final) and their sampler/eta from config.runs descriptions.
std::vector<RunSpec> sampler_runs(const GoldenFile& g) {
  const json& c = g.config();
  std::vector<RunSpec> runs;
  for (const auto& name : g.names_with_prefix("out.")) {
    const std::string suffix = ".final";
    if (name.size() <= suffix.size() + 4 || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    RunSpec r;
    r.name = name.substr(4, name.size() - 4 - suffix.size());
    std::string desc = c.contains("runs") && c["runs"].contains(r.name) ? c["runs"][r.name].get<std::string>() : "";
    if (desc.empty()) {
      // No description: the run name says the sampler; eta comes from the config keys the generator writes.
      MOH_CHECK(r.name.rfind("ddim", 0) == 0 || r.name.rfind("ddpm", 0) == 0, "reference file '", g.path(),
                "': run '", r.name, "' has no description in config.runs and its name names no sampler");
      desc = r.name.rfind("ddim", 0) == 0
                 ? std::string("ddim_sample_loop eta=") + (r.name == "ddim" ? "ddim_eta" : "ddim_eta_extra")
                 : "p_sample_loop";
    }
    r.ddim = desc.find("ddim_sample_loop") != std::string::npos;
    MOH_CHECK(r.ddim || desc.find("p_sample_loop") != std::string::npos, "reference file '", g.path(), "': run '",
              r.name, "' uses an unknown sampler: ", desc);
    if (r.ddim) {
      // "eta=0.0" (a number) or "eta=<config key>".
      const auto pos = desc.find("eta=");
      MOH_CHECK(pos != std::string::npos, "reference file '", g.path(), "': run '", r.name, "' does not state eta");
      size_t end = pos + 4;
      while (end < desc.size() && (std::isalnum((unsigned char)desc[end]) || desc[end] == '_' || desc[end] == '.' ||
                                   desc[end] == '-'))
        ++end;
      const std::string val = desc.substr(pos + 4, end - pos - 4);
      if (c.contains(val) && c[val].is_number()) {
        r.eta = c[val].get<double>();
      } else {
        try {
          r.eta = std::stod(val);
        } catch (const std::exception&) {
          throw Error("reference file '" + g.path() + "': run '" + r.name + "' has eta '" + val +
                      "', which is neither a number nor a config key");
        }
      }
    }
    runs.push_back(r);
  }
  return runs;
}

struct Trajectory {
  std::vector<torch::Tensor> x_t, pred_xstart, model_out, model_t;
  torch::Tensor final_x;
};

std::vector<ParityCheck> run_dit_sampler(const GoldenFile& g) {
  const json& c = g.config();
  DiT model = build_golden_dit(g);
  const auto& mc = model->config();
  int64_t diffusion_steps = 1000;
  if (c.contains("create_diffusion_defaults")) {
    const auto& dd = c["create_diffusion_defaults"];
    diffusion_steps = dd.value("diffusion_steps", int64_t{1000});
    MOH_CHECK(dd.value("noise_schedule", std::string("linear")) == "linear", "reference file '", g.path(),
              "': only the linear noise schedule is supported");
    MOH_CHECK(!dd.value("predict_xstart", false) && !dd.value("sigma_small", false), "reference file '", g.path(),
              "': only EPSILON prediction with LEARNED_RANGE / FIXED_LARGE variance is supported");
  }
  const std::string steps = c["num_sampling_steps"].is_string() ? c["num_sampling_steps"].get<std::string>()
                                                                 : std::to_string(c["num_sampling_steps"].get<int64_t>());
  auto diff = GaussianDiffusion::create(steps, mc.learn_sigma, diffusion_steps);
  const bool clip = c.value("clip_denoised", false);
  const double cfg_scale = g.has("in.cfg_scale") ? g.get("in.cfg_scale").item<double>() : c["cfg_scale"].get<double>();

  std::vector<ParityCheck> checks;
  // Schedule arrays (float32 casts of the float64 arrays, as the math uses them).
  auto arr = [](const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64).to(torch::kFloat32); };
  const std::map<std::string, const std::vector<double>*> sched = {
      {"betas", &diff.betas},
      {"alphas_cumprod", &diff.alphas_cumprod},
      {"alphas_cumprod_prev", &diff.alphas_cumprod_prev},
      {"sqrt_recip_alphas_cumprod", &diff.sqrt_recip_alphas_cumprod},
      {"sqrt_recipm1_alphas_cumprod", &diff.sqrt_recipm1_alphas_cumprod},
      {"posterior_variance", &diff.posterior_variance},
      {"posterior_log_variance_clipped", &diff.posterior_log_variance_clipped},
      {"posterior_mean_coef1", &diff.posterior_mean_coef1},
      {"posterior_mean_coef2", &diff.posterior_mean_coef2},
      {"log_betas", &diff.log_betas}};
  for (const auto& [name, v] : sched)
    if (g.has("mid.schedule." + name))
      checks.push_back({"mid.schedule." + name, arr(*v), g.get("mid.schedule." + name), {0.0, 1e-7}});
  if (g.has("mid.schedule.timestep_map"))
    checks.push_back({"mid.schedule.timestep_map", torch::tensor(diff.timestep_map, torch::kLong),
                      g.get("mid.schedule.timestep_map"), {0.0, 0.0}});

  const auto x_T = g.get("in.x_T");
  const auto y = g.get("in.y");
  DenoiserOptions dopt;
  dopt.use_cfg = true;
  dopt.cfg_scale = cfg_scale;
  auto denoise = make_dit_denoiser(model, y, dopt);

  for (const auto& run : sampler_runs(g)) {
    const std::string p = run.name;
    NoiseFn noise = g.has("in." + p + ".noises") ? replay_noise(g.get("in." + p + ".noises")) : zero_noise();
    MOH_CHECK(g.has("in." + p + ".noises") || (run.ddim && run.eta == 0.0), "reference file '", g.path(), "': run '",
              p, "' needs stored noise (in.", p, ".noises)");

    // 1. Free-running trajectory: our model + our sampler from x_T.
    Trajectory tr;
    SamplerOptions so;
    so.clip_denoised = clip;
    so.on_step = [&tr, &x_T](const SamplerStep& s) {
      tr.x_t.push_back(s.sample);
      tr.pred_xstart.push_back(s.out->pred_xstart);
      tr.model_out.push_back(s.out->model_output);
      tr.model_t.push_back(torch::full({x_T.size(0)}, s.t_original, torch::kLong));
    };
    tr.final_x = run.ddim ? ddim_sample_loop(diff, denoise, x_T, noise, run.eta, so)
                          : p_sample_loop(diff, denoise, x_T, noise, so);
    add_scaled(checks, g, "mid." + p + ".x_t", torch::stack(tr.x_t));
    add_scaled(checks, g, "mid." + p + ".pred_xstart", torch::stack(tr.pred_xstart));
    add_scaled(checks, g, "mid." + p + ".model_out", torch::stack(tr.model_out));
    if (g.has("mid." + p + ".model_t"))
      checks.push_back({"mid." + p + ".model_t", torch::stack(tr.model_t), g.get("mid." + p + ".model_t"), {0, 0}});
    add_scaled(checks, g, "out." + p + ".final", tr.final_x);
    add_scaled(checks, g, "out." + p + ".samples", tr.final_x.slice(0, 0, tr.final_x.size(0) / 2));

    // 2. Sampler math alone, step by step: start each step from the reference x_t of the previous step and feed
    // the reference model output, so only the schedule and update arithmetic are compared (tight tolerance).
    if (g.has("mid." + p + ".x_t") && g.has("mid." + p + ".model_out")) {
      auto ref_x = g.get("mid." + p + ".x_t"), ref_out = g.get("mid." + p + ".model_out");
      std::vector<torch::Tensor> xs, x0s;
      auto x = x_T;
      for (int64_t call = 0; call < diff.num_timesteps; ++call) {
        const int64_t k = diff.num_timesteps - 1 - call;
        auto replay = [&](const torch::Tensor&, const torch::Tensor&) { return ref_out[call]; };
        MeanVariance mv;
        auto z = noise(x, call);
        auto next = run.ddim ? ddim_sample(diff, replay, x, k, z, run.eta, clip, &mv)
                             : p_sample(diff, replay, x, k, z, clip, &mv);
        xs.push_back(next);
        x0s.push_back(mv.pred_xstart);
        x = ref_x[call];
      }
      const Tolerance tight{0.0, 1e-5};  // float32 re-evaluation of the same formulas: expected bit-exact
      auto add_tight = [&](const std::string& ref_name, const std::vector<torch::Tensor>& ours) {
        if (!g.has(ref_name)) return;
        auto ref = g.get(ref_name);
        Tolerance t = tight;
        t.atol = 1e-6 * ref.abs().max().item<double>();
        checks.push_back({"step." + ref_name.substr(4), torch::stack(ours), ref, t});
      };
      add_tight("mid." + p + ".x_t", xs);
      add_tight("mid." + p + ".pred_xstart", x0s);
    }
  }
  return checks;
}

}  // namespace

std::map<std::string, ParityRunner> model_parity_runners() {
  return {{"dit_attn", run_dit_attn}, {"dit_model", run_dit_model}, {"dit_sampler", run_dit_sampler}};
}

}  // namespace moh::dit
