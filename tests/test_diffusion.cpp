// [diffusion] Gaussian diffusion (dit/diffusion.h): the linear schedule and respacing facts of spec/diffusion.md
// §1 (official values), and the DDPM / DDIM samplers against dit_sampler.safetensors (official p_sample_loop /
// ddim_sample_loop driving the tiny MoH-DiT with stored noise), both free-running and step by step.
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "parity/golden.h"
#include "dit/diffusion.h"
#include "dit/parity.h"
#include "tests/catch_compat.h"
#include "tests/parity_assert.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

namespace {

// Relative closeness for float64 facts quoted with 16 digits.
bool close(double ours, double ref, double rel = 1e-13) { return std::abs(ours - ref) <= rel * std::abs(ref); }

}  // namespace

TEST_CASE("Linear schedule respaced to 250 steps reproduces the official float64 values", "[diffusion]") {
  const auto d = moh::dit::GaussianDiffusion::create("250");
  REQUIRE(d.num_timesteps == 250);
  CHECK(close(d.betas[0], 9.999999999998899e-05, 1e-9));
  CHECK(close(d.betas[1], 5.990655644756426e-04));
  CHECK(close(d.betas[249], 0.07751934499235003));
  CHECK(close(d.alphas_cumprod[249], 4.035829765375675e-05, 1e-12));
  CHECK(close(d.posterior_log_variance_clipped[0], -9.364628159803084));
  CHECK(close(d.posterior_log_variance_clipped[249], -2.557231152560974));
  CHECK(close(d.log_betas[249], -2.5572277609664122));
  CHECK(close(d.sqrt_recip_alphas_cumprod[249], 157.41045725150065, 1e-12));
  CHECK(close(d.sqrt_recipm1_alphas_cumprod[249], 157.4072808104076, 1e-12));
  CHECK(d.posterior_mean_coef1[0] == 1.0);
  CHECK(d.posterior_mean_coef2[0] == 0.0);
  CHECK(close(d.posterior_mean_coef1[249], 5.127614983862911e-04, 1e-12));
  CHECK(close(d.posterior_mean_coef2[249], 0.9604553074808463));
  CHECK(d.posterior_log_variance_clipped[0] == d.posterior_log_variance_clipped[1]);
  // Base 1000-step process and the identity respacing (betas recomputed from alpha-bar ratios).
  const auto base = moh::dit::linear_beta_schedule(1000);
  CHECK(base.back() == 0.02);
  double abar = 1.0;
  for (double b : base) abar *= 1.0 - b;
  CHECK(close(abar, 4.035829765375676e-05, 1e-12));
  const auto full = moh::dit::GaussianDiffusion::create("1000");
  CHECK(full.betas[0] == 9.999999999998899e-05);
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(full.timestep_map[i] == i);
}

TEST_CASE("space_timesteps: round-half-even ties, section strings, ddim strides, bad input", "[diffusion]") {
  using moh::dit::space_timesteps;
  const auto m25 = space_timesteps(1000, "25");
  REQUIRE(m25.size() == 25);
  const std::set<int64_t> s25(m25.begin(), m25.end());
  CHECK(s25.count(166) == 1);  // 166.5 -> 166 (half to even), not 167
  CHECK(s25.count(832) == 1);  // 832.5 -> 832
  CHECK(s25.count(167) == 0);
  CHECK(s25.count(833) == 0);
  CHECK(space_timesteps(1000, "7") == std::vector<int64_t>({0, 166, 333, 500, 666, 832, 999}));
  const auto m250 = space_timesteps(1000, "250");
  REQUIRE(m250.size() == 250);
  CHECK(std::vector<int64_t>(m250.begin(), m250.begin() + 5) == std::vector<int64_t>({0, 4, 8, 12, 16}));
  CHECK(std::vector<int64_t>(m250.end() - 4, m250.end()) == std::vector<int64_t>({987, 991, 995, 999}));
  const auto ddim = space_timesteps(1000, "ddim25");
  REQUIRE(ddim.size() == 25);
  CHECK(ddim[1] == 40);
  CHECK(space_timesteps(1000, "10,15,20").size() == 45);
  CHECK(moh::test::contains(moh::test::error_message([] { space_timesteps(1000, "abc"); }), "abc"));
  CHECK(moh::test::contains(moh::test::error_message([] { space_timesteps(1000, "ddim999"); }), "ddim999"));
  CHECK(moh::test::contains(moh::test::error_message([] { space_timesteps(10, "20"); }), "20"));
  CHECK(moh::test::contains(moh::test::error_message([] { moh::dit::GaussianDiffusion::create("1"); }), "2 steps"));
}

TEST_CASE("DDPM and DDIM samplers match the official sampler golden (free-running and per step)", "[diffusion]") {
  moh::GoldenFile g(moh::test::data_path("golden/dit_sampler.safetensors"));
  REQUIRE(g.family() == "dit_sampler");
  torch::NoGradGuard no_grad;
  const auto checks = moh::dit::model_parity_runners().at("dit_sampler")(g);
  std::set<std::string> names;
  for (auto& c : checks) names.insert(c.name);
  // Every run stored in the file is compared: final, per-step x_t, and the sampler math alone per step.
  for (const auto& n : g.names_with_prefix("out.")) {
    INFO("output not compared: " << n);
    CHECK(names.count(n) == 1);
  }
  for (const auto& n : g.names_with_prefix("mid.")) {
    INFO("intermediate not compared: " << n);
    CHECK(names.count(n) == 1);
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".x_t") == 0) CHECK(names.count("step." + n.substr(4)) == 1);
  }
  moh::test::require_checks_pass(checks, g.path());
}

TEST_CASE("Samplers draw noise once per step (including the last) and DDIM eta=0 ignores it", "[diffusion]") {
  const auto d = moh::dit::GaussianDiffusion::create("6");
  // A fixed linear "model": eps = 0.1 x, variance values 0 (model output has 2C channels).
  std::vector<int64_t> seen_t;
  moh::dit::DenoiseFn denoise = [&](const torch::Tensor& x, const torch::Tensor& t) {
    seen_t.push_back(t[0].item<int64_t>());
    return torch::cat({0.1 * x, torch::zeros_like(x)}, 1);
  };
  int64_t calls = 0;
  moh::dit::NoiseFn counting = [&](const torch::Tensor& like, int64_t call) {
    CHECK(call == calls);
    ++calls;
    return torch::ones_like(like) * (call + 1);
  };
  auto x_T = torch::randn({2, 3, 4, 4}, torch::kFloat32);
  auto ddpm = moh::dit::p_sample_loop(d, denoise, x_T, counting);
  CHECK(calls == d.num_timesteps);
  std::vector<int64_t> expected_t(d.timestep_map.rbegin(), d.timestep_map.rend());
  CHECK(seen_t == expected_t);
  // The last step adds no noise: replacing its draw does not change the result.
  calls = 0;
  moh::dit::NoiseFn last_differs = [&](const torch::Tensor& like, int64_t call) {
    ++calls;
    return call == d.num_timesteps - 1 ? torch::full_like(like, 1e6) : torch::ones_like(like) * (call + 1);
  };
  CHECK(torch::equal(moh::dit::p_sample_loop(d, denoise, x_T, last_differs), ddpm));
  calls = 0;
  auto a = moh::dit::ddim_sample_loop(d, denoise, x_T, counting, 0.0);
  CHECK(calls == d.num_timesteps);
  auto b = moh::dit::ddim_sample_loop(d, denoise, x_T, moh::dit::zero_noise(), 0.0);
  CHECK(torch::equal(a, b));
  // With eta > 0 the draws matter.
  auto c1 = moh::dit::ddim_sample_loop(d, denoise, x_T, moh::dit::zero_noise(), 0.7);
  calls = 0;
  auto c2 = moh::dit::ddim_sample_loop(d, denoise, x_T, counting, 0.7);
  CHECK_FALSE(torch::equal(c1, c2));
  // clip_denoised clamps pred_xstart into [-1, 1].
  moh::dit::SamplerOptions so;
  so.clip_denoised = true;
  double max_x0 = 0;
  so.on_step = [&](const moh::dit::SamplerStep& s) {
    max_x0 = std::max(max_x0, s.out->pred_xstart.abs().max().item<double>());
  };
  moh::dit::p_sample_loop(d, denoise, x_T * 50, moh::dit::zero_noise(), so);
  CHECK(max_x0 <= 1.0);
  // A model output without variance channels is rejected for a learn_sigma schedule.
  moh::dit::DenoiseFn narrow = [](const torch::Tensor& x, const torch::Tensor&) { return x; };
  CHECK(moh::test::contains(
      moh::test::error_message([&] { moh::dit::p_sample_loop(d, narrow, x_T, moh::dit::zero_noise()); }),
      "learn_sigma"));
}
