// Training pieces (common/moh/aux_loss.h, common/train/trainer.h, dit/training_losses.h, vit/train.h, dit/train.h,
// apps/moh-train): the MoH load-balancing loss on hand-made router outputs, the diffusion objective's identities
// (oracle model -> zero loss, VLB does not train eps, discretised likelihood is a distribution), a few training
// steps lowering the loss of tiny ViT / DiT configs on a synthetic IDX dataset, checkpoint/resume reproducing the
// uninterrupted run bit for bit, and the app's error handling.
#include <cmath>
#include <fstream>

#include "common/datasets/idx.h"
#include "common/moh/aux_loss.h"
#include "common/moh/gates.h"
#include "common/weights/safetensors.h"
#include "common/train/trainer.h"
#include "dit/diffusion.h"
#include "dit/train.h"
#include "dit/training_losses.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"
#include "vit/train.h"

namespace {

// A Fashion-MNIST-shaped synthetic dataset: class c = a bright 3-row bar starting at row 3 + 2c over faint noise.
// Learnable in a few dozen steps by any model that sees rows.
std::string synthetic_fmnist(int64_t n_train, int64_t n_test) {
  const auto dir = moh::test::temp_dir("synthfm");
  auto make = [&](int64_t n, const std::string& kind, uint64_t seed) {
    auto gen = moh::step_generator(seed, 0, 0);
    auto labels = torch::arange(n, torch::kLong).remainder(10);
    auto img = torch::randint(0, 40, {n, 28, 28}, gen, torch::kLong);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = 3 + 2 * labels[i].item<int64_t>();
      img[i].narrow(0, r, 3).narrow(1, 4, 20).fill_(230);
    }
    moh::write_idx(dir + "/" + kind + "-images-idx3-ubyte.gz", img.to(torch::kUInt8), true);
    moh::write_idx(dir + "/" + kind + "-labels-idx1-ubyte.gz", labels.to(torch::kUInt8), true);
  };
  make(n_train, "train", 1);
  make(n_test, "t10k", 2);
  return dir;
}

const std::string& synthetic_dir() {
  static const std::string dir = synthetic_fmnist(320, 100);
  return dir;
}

moh::vit::ViTConfig tiny_vit() {
  return moh::vit::vit_config_from_json(nlohmann::json::parse(R"({
    "img_size": 64, "patch_size": 4, "in_chans": 1, "num_classes": 10, "embed_dims": [16, 16, 32, 32],
    "num_heads": [2, 2, 2, 4], "mlp_ratios": [2, 2, 2, 2], "depths": [1, 1, 1, 1], "sr_ratios": [4, 2, 2, 1],
    "window_size": [3, 3, 3, null], "shared_head": [2, 1, 0, 2], "routed_head": [0, 1, 1, 1]})"));
}

moh::dit::DiTConfig tiny_dit() {
  return moh::dit::DiTConfig::from_json(nlohmann::json::parse(R"({
    "input_size": 28, "patch_size": 4, "in_channels": 1, "hidden_size": 32, "depth": 2, "num_heads": 4,
    "shared_head": [4, 2], "routed_head": [0, 1], "mlp_ratio": 2.0, "class_dropout_prob": 0.1,
    "num_classes": 10, "learn_sigma": true})"));
}

moh::vit::FmnistPreprocess pre2() {
  moh::vit::FmnistPreprocess p;
  p.upsample = 2;
  return p;
}

moh::TrainCommonOptions tiny_common(int64_t steps, int64_t batch, double lr) {
  moh::TrainCommonOptions c;
  c.data_dir = synthetic_dir();
  c.steps = steps;
  c.batch_size = batch;
  c.lr = lr;
  c.warmup = 2;
  c.cosine = false;  // lr independent of the total step count (resume test compares runs of different lengths)
  c.clip_grad = 1.0;
  c.device = "cpu";
  c.log_every = 1;
  return c;
}

double window_mean(const std::vector<moh::TrainLog>& logs, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += logs.at(i).main;
  return s / double(to - from);
}

}  // namespace

TEST_CASE("MoH aux loss on hand-made router outputs", "[apps]") {
  // T=2 tokens, E=3 candidates, top-1: me = [0.4, 0.4, 0.2], ce = [0.5, 0.5, 0] -> mean(me*ce) * 9 = 1.2.
  auto probs = torch::tensor({0.7, 0.2, 0.1, 0.1, 0.6, 0.3}, torch::kFloat32).view({2, 3}).requires_grad_(true);
  auto idx = torch::tensor({0, 1}, torch::kLong).view({2, 1});
  auto l = moh::moh_layer_aux_loss(probs, idx);
  CHECK(l.item<double>() == Approx(1.2).epsilon(1e-6));
  l.backward();
  // d l / d probs[t, e] = ce_e * E^2 / (E * T) = ce_e * 1.5; the mask itself carries no gradient.
  CHECK(torch::allclose(probs.grad(), torch::tensor({0.75, 0.75, 0.0, 0.75, 0.75, 0.0}).view({2, 3})));

  // Perfectly balanced routing gives l_aux = k (uniform probs, every candidate picked equally often).
  auto uni = torch::full({4, 4}, 0.25);
  auto idx2 = torch::tensor({0, 1, 2, 3, 0, 1, 2, 3}, torch::kLong).view({4, 2});
  CHECK(moh::moh_layer_aux_loss(uni, idx2).item<double>() == Approx(2.0).epsilon(1e-6));

  moh::MoHAuxLoss total;
  CHECK(total.total(0.01).item<double>() == 0.0);  // no routed layer -> no term
  total.add(probs.detach(), idx);
  total.add(uni, idx2);
  CHECK(total.total(0.01).item<double>() == Approx(0.01 * (1.2 + 2.0) / 2).epsilon(1e-6));

  // With real router outputs from moh_gates: the loss equals the formula evaluated independently.
  torch::manual_seed(11);
  moh::MoHGateConfig cfg{6, 2, 2, false};
  moh::MoHGateWeights w{torch::randn({4, 8}), torch::randn({2, 8}), torch::randn({2, 8})};
  moh::MoHGateDebug dbg;
  moh::moh_gates(torch::randn({2, 5, 8}), cfg, w, &dbg);
  auto p = dbg.router_probs;
  double ref = 0;
  for (int64_t e = 0; e < 4; ++e) {
    double me = p.select(1, e).mean().item<double>(), ce = dbg.topk_indices.eq(e).to(torch::kFloat64).sum().item<double>() / 10.0;
    ref += me * ce / 4.0;
  }
  CHECK(moh::moh_layer_aux_loss(p, dbg.topk_indices).item<double>() == Approx(ref * 16).epsilon(1e-5));
  CHECK_THROWS_AS(moh::moh_layer_aux_loss(p, torch::Tensor()), moh::Error);
}

TEST_CASE("Diffusion training objective identities", "[apps]") {
  using namespace moh::dit;
  auto d = GaussianDiffusion::create("", true, 1000);
  torch::manual_seed(5);
  auto x0 = torch::rand({6, 1, 8, 8}) * 2 - 1;
  auto noise = torch::randn_like(x0);
  auto t = torch::tensor({1, 10, 100, 500, 900, 999}, torch::kLong);

  // An oracle predicting the true noise and variance value -1 (= the true posterior log variance) has zero loss.
  auto oracle = [&](const torch::Tensor& x_t, const torch::Tensor&) {
    return torch::cat({noise, -torch::ones_like(noise)}, 1);
  };
  auto r = training_losses(d, oracle, x0, t, noise);
  CHECK(r.mse.abs().max().item<double>() == 0.0);
  CHECK(r.vb.abs().max().item<double>() < 1e-3);
  // A wrong variance is penalised, a wrong eps too.
  auto wrong_var = [&](const torch::Tensor&, const torch::Tensor&) {
    return torch::cat({noise, torch::ones_like(noise)}, 1);
  };
  // (at t = 1 beta and the posterior variance differ by ~2x; at large t they nearly coincide)
  CHECK(training_losses(d, wrong_var, x0, t, noise).vb[0].item<double>() > 0.05);

  // The VLB term must not train eps: d loss / d eps = d mse / d eps = -2 (noise - eps) / numel per sample.
  auto out = torch::randn({6, 2, 8, 8}).requires_grad_(true);
  auto leaf = [&](const torch::Tensor&, const torch::Tensor&) { return out; };
  auto r2 = training_losses(d, leaf, x0, t, noise);
  r2.loss.sum().backward();
  auto expect = -2.0 * (noise - out.detach().narrow(1, 0, 1)) / 64.0;
  CHECK(torch::allclose(out.grad().narrow(1, 0, 1), expect, 1e-5, 1e-6));
  CHECK(out.grad().narrow(1, 1, 1).abs().sum().item<double>() > 0);  // the variance channel is trained by vb

  // t == 0 uses the discretised decoder likelihood, a proper distribution over the 256 pixel values.
  auto vals = torch::linspace(-1, 1, 256).view({256, 1, 1, 1});
  for (double mean : {-0.95, 0.0, 0.42}) {
    for (double log_scale : {-5.0, -3.0, -1.0}) {
      auto lp = discretized_gaussian_log_likelihood(vals, torch::full_like(vals, mean), torch::full_like(vals, log_scale));
      CHECK(lp.exp().sum().item<double>() == Approx(1.0).margin(2e-3));
    }
  }
  // KL identities: equal Gaussians -> 0; N(0,1) vs N(1,1) -> 0.5.
  auto z = torch::zeros({3});
  CHECK(normal_kl(z, z, z, z).abs().max().item<double>() == 0.0);
  CHECK(normal_kl(z, z, z + 1, z).mean().item<double>() == Approx(0.5));
}

TEST_CASE("Seeded data order and LR schedule", "[apps]") {
  moh::EpochSampler a(50, 8, 7), b(50, 8, 7), c(50, 8, 8);
  CHECK(torch::equal(a.indices(13), b.indices(13)));  // stateless: same (seed, step) -> same batch
  CHECK(!torch::equal(a.indices(0), c.indices(0)));
  // One epoch (6 steps of 8 from 50) draws 48 distinct indices.
  std::vector<torch::Tensor> ep;
  for (int s = 6; s < 12; ++s) ep.push_back(a.indices(s));
  CHECK(std::get<0>(torch::_unique(torch::cat(ep))).numel() == 48);
  moh::LrSchedule lr{1.0, 0.1, 10, 111, true};  // cosine over steps 10..110 (span 100)
  CHECK(lr.at(0) == Approx(0.1));
  CHECK(lr.at(9) == Approx(1.0));
  CHECK(lr.at(60) == Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.5))));
  CHECK(lr.at(110) == Approx(0.1));
  moh::LrSchedule flat{1.0, 0.1, 10, 111, false};
  CHECK(flat.at(100) == Approx(1.0));

  // Re-targeting keeps the lr of the step where it happens and ends the cosine at the new total.
  moh::LrSchedule longer{1.0, 0.1, 10, 111, true};
  const double at60 = longer.at(60);
  longer.retarget(60, 211);
  CHECK(longer.at(60) == Approx(at60));
  CHECK(longer.at(135) == Approx(0.1 + (at60 - 0.1) * 0.5));  // half way from 60 to 210: cos(pi/2) = 0
  CHECK(longer.at(210) == Approx(0.1));
  moh::LrSchedule shorter{1.0, 0.1, 10, 111, true};
  const double at40 = shorter.at(40);
  shorter.retarget(40, 51);
  CHECK(shorter.at(40) == Approx(at40));
  CHECK(shorter.at(50) == Approx(0.1));
  for (int64_t s = 40; s < 50; ++s) CHECK(shorter.at(s + 1) <= shorter.at(s));
  moh::LrSchedule warm{1.0, 0.1, 10, 111, true};  // during warm-up only the end moves
  warm.retarget(5, 51);
  CHECK(warm.anchor_step == -1);
  CHECK(warm.at(5) == Approx(0.6));
  CHECK(warm.at(9) == Approx(1.0));
  CHECK(warm.at(50) == Approx(0.1));
  const auto back = moh::LrSchedule::from_json(shorter.to_json());
  for (int64_t s : {0, 20, 40, 45, 50}) CHECK(back.at(s) == shorter.at(s));
}

namespace {
// A model small enough that only the schedule matters: y = Linear(4 -> 1)(x), loss = mean(y^2).
struct ScheduleProbe {
  torch::nn::Linear lin{4, 1};
  moh::TrainLoopOptions options(int64_t steps) const {
    moh::TrainLoopOptions o;
    o.kind = "probe";
    o.steps = steps;
    o.lr = moh::LrSchedule{1e-3, 0.0, 0, steps, true};
    o.log_every = 1;
    o.ckpt_metadata = {{"kind", "probe"}};  // what the model trainers record (checked on resume)
    return o;
  }
  moh::StepLosses forward() {
    moh::StepLosses l;
    l.loss = lin->forward(torch::ones({2, 4})).pow(2).mean();
    return l;
  }
};
}  // namespace

TEST_CASE("A resume with another step count continues the lr schedule from where it was, without a jump", "[apps]") {
  const auto dir = moh::test::temp_dir("lrresume");
  ScheduleProbe a;
  auto o = a.options(10);
  o.ckpt_path = dir + "/probe.ckpt.safetensors";
  o.ckpt_every = 4;
  moh::Trainer ta(*a.lin, o);
  const auto planned = ta.schedule();
  // Interrupted during step 6 (as Ctrl-C would): the checkpoint of step 4 stays.
  CHECK_THROWS(ta.run([&](int64_t step) {
    if (step == 6) throw std::runtime_error("interrupted");
    return a.forward();
  }, {}));
  ScheduleProbe b;
  moh::Trainer tb(*b.lin, b.options(20));
  REQUIRE(tb.resume(o.ckpt_path) == 4);
  CHECK(tb.schedule().at(4) == Approx(planned.at(4)).epsilon(1e-12));  // what the 10-step plan gave at step 4
  CHECK(tb.schedule().at(4) < 0.7e-3);  // a cosine restarted over 20 steps gives 0.89e-3 at step 4
  CHECK(tb.schedule().at(19) == Approx(0.0).margin(1e-15));
  std::vector<moh::TrainLog> logs;
  tb.run([&](int64_t) { return b.forward(); }, [&](const moh::TrainLog& l) { logs.push_back(l); });
  REQUIRE(logs.size() == 16);
  CHECK(logs.front().lr == Approx(planned.at(4)).epsilon(1e-12));
  for (size_t k = 1; k < logs.size(); ++k) CHECK(logs[k].lr <= logs[k - 1].lr);
}

TEST_CASE("--time-limit re-fits the step count during the run when the speed changes, the lr never jumps", "[apps]") {
  // Simulated clock: a step takes 1 s until step 70, then 2 s (another job started on the machine); budget 200 s.
  // Fit at step 40: 40 + 0.95 * 160 / 1 = 192 steps. At step 100 (steps 70..99 took 2 s): 100 + 0.95 * 70 / 2 = 133.
  ScheduleProbe p;
  auto o = p.options(1000);
  o.time_limit_s = 200;
  double now = 0;
  o.clock_s = [&] { return now; };
  moh::Trainer t(*p.lin, o);
  std::vector<moh::TrainLog> logs;
  t.run([&](int64_t step) {
    now += step < 70 ? 1.0 : 2.0;
    return p.forward();
  }, [&](const moh::TrainLog& l) { logs.push_back(l); });
  CHECK(t.step() == 133);
  CHECK(now <= 200);
  REQUIRE(logs.size() == 133);
  CHECK(logs.back().lr == Approx(0.0).margin(1e-12));  // decayed to the floor at the fitted end
  // No jump: the largest step-to-step change is the cosine's own slope (<= 1e-3 * pi / (2 * 33) = 4.8e-5); a
  // schedule re-targeted without an anchor would drop from 6.6e-4 to 1.4e-4 at step 100.
  double max_change = 0;
  for (size_t k = 1; k < logs.size(); ++k) max_change = std::max(max_change, std::abs(logs[k].lr - logs[k - 1].lr));
  CHECK(max_change < 5e-5);
}

TEST_CASE("A few ViT training steps lower the loss; checkpoint and resume repeat the next step exactly", "[apps]") {
  const auto out = moh::test::temp_dir("vittrain");
  moh::vit::FmnistPreprocess pre;  // pad 2 -> 32, x2 -> 64
  pre.upsample = 2;
  moh::vit::ViTTrainOptions o;
  o.common = tiny_common(24, 32, 3e-3);
  o.augment_shift = 0;
  o.common.out = out + "/vit.safetensors";
  o.eval_limit = 60;
  std::vector<moh::TrainLog> logs;
  auto r = moh::vit::train_vit(tiny_vit(), pre, o, [&](const moh::TrainLog& l) { logs.push_back(l); });
  REQUIRE(logs.size() == 24);
  CHECK(window_mean(logs, 18, 24) < 0.7 * window_mean(logs, 0, 6));
  CHECK(logs.back().aux > 0);         // routed stages contribute the load-balancing term
  CHECK(r.test_accuracy > 0.3);       // chance is 0.1
  moh::SafetensorsFile f(o.common.out);
  CHECK(f.meta("kind") == "vit");
  CHECK(f.contains("block4.0.attn.wg.weight"));
  CHECK(moh::vit::vit_config_from_json(nlohmann::json::parse(f.meta("config"))).img_size == 64);

  // Resume: 3 steps + checkpoint, then 1 more step == 4 uninterrupted steps.
  auto o1 = o;
  o1.common.steps = 4;
  o1.common.out = out + "/full.safetensors";
  o1.eval_limit = -1;
  std::vector<moh::TrainLog> full;
  moh::vit::train_vit(tiny_vit(), pre, o1, [&](const moh::TrainLog& l) { full.push_back(l); });
  auto o2 = o1;
  o2.common.steps = 3;
  o2.common.out = "";
  o2.common.ckpt = out + "/part.ckpt.safetensors";
  moh::vit::train_vit(tiny_vit(), pre, o2);
  auto o3 = o1;
  o3.common.resume = o2.common.ckpt;
  o3.common.out = out + "/resumed.safetensors";
  std::vector<moh::TrainLog> resumed;
  moh::vit::train_vit(tiny_vit(), pre, o3, [&](const moh::TrainLog& l) { resumed.push_back(l); });
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0].step == 4);
  CHECK(resumed[0].loss == full.back().loss);
  moh::SafetensorsFile a(o1.common.out), b(o3.common.out);
  REQUIRE(a.names() == b.names());
  for (const auto& n : a.names()) CHECK(torch::equal(a.tensor(n), b.tensor(n)));
}

TEST_CASE("A few DiT training steps lower the loss; resume with EMA repeats the next step exactly", "[apps]") {
  const auto out = moh::test::temp_dir("dittrain");
  moh::dit::DiTTrainOptions o;
  o.common = tiny_common(40, 16, 2e-3);
  o.common.ema_decay = 0.9;
  std::vector<moh::TrainLog> logs;
  moh::dit::train_dit(tiny_dit(), o, {}, [&](const moh::TrainLog& l) { logs.push_back(l); });
  REQUIRE(logs.size() == 40);
  CHECK(window_mean(logs, 30, 40) < 0.7 * window_mean(logs, 0, 10));
  CHECK(logs.back().aux > 0);

  auto o1 = o;
  o1.common.steps = 4;
  o1.common.out = out + "/full.safetensors";
  std::vector<moh::TrainLog> full;
  moh::dit::train_dit(tiny_dit(), o1, {}, [&](const moh::TrainLog& l) { full.push_back(l); });
  auto o2 = o1;
  o2.common.steps = 3;
  o2.common.out = "";
  o2.common.ckpt = out + "/part.ckpt.safetensors";
  moh::dit::train_dit(tiny_dit(), o2);
  auto o3 = o1;
  o3.common.resume = o2.common.ckpt;
  o3.common.out = out + "/resumed.safetensors";
  std::vector<moh::TrainLog> resumed;
  moh::dit::train_dit(tiny_dit(), o3, {}, [&](const moh::TrainLog& l) { resumed.push_back(l); });
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0].loss == full.back().loss);
  moh::SafetensorsFile a(o1.common.out), b(o3.common.out);
  CHECK(a.meta("weights") == "ema");
  CHECK(a.contains("pos_embed"));  // the EMA covers the frozen pos_embed too (train.py)
  REQUIRE(a.names() == b.names());
  for (const auto& n : a.names()) CHECK(torch::equal(a.tensor(n), b.tensor(n)));
  // A wall-clock budget that cannot fit --steps stops right after the 40 calibration steps and still exports.
  auto o5 = o1;
  o5.common.steps = 60;
  o5.common.time_limit_s = 1e-3;
  o5.common.out = out + "/budget.safetensors";
  auto r5 = moh::dit::train_dit(tiny_dit(), o5);
  CHECK(r5.steps_done == 41);
  CHECK(moh::SafetensorsFile(o5.common.out).meta("steps") == "41");
  // A checkpoint of the other kind is refused with a clear message.
  auto o4 = o1;
  o4.common.resume = o2.common.ckpt;
  moh::vit::ViTTrainOptions ov;
  ov.common = o4.common;
  ov.common.out = "";
  ov.augment_shift = 0;
  ov.eval_limit = -1;
  CHECK(moh::test::contains(moh::test::error_message([&] { moh::vit::train_vit(tiny_vit(), pre2(), ov); }), "'dit' model"));
}

TEST_CASE("moh-train app: trains from a config file and reports bad configs", "[apps]") {
  const auto dir = moh::test::temp_dir("trainapp");
  nlohmann::json cfg = {{"kind", "vit"}, {"model", moh::vit::vit_config_to_json(tiny_vit())},
                        {"preprocess", pre2().to_json()},
                        {"train", {{"batch_size", 16}, {"augment_shift", 0}, {"device", "cpu"}}}};
  {
    std::ofstream(dir + "/tiny.json") << cfg.dump(2);
  }
  std::string log;
  const std::string app = moh::test::bin_path("moh-train");
  int rc = moh::test::run_command(app + " vit --config " + dir + "/tiny.json --data " + synthetic_dir() +
                                      " --steps 2 --log-every 1 --eval-limit 20 --out " + dir + "/m.safetensors",
                                  &log);
  INFO(log);
  CHECK(rc == 0);
  CHECK(moh::test::contains(log, "step 2/2"));
  CHECK(moh::test::contains(log, "test accuracy"));
  CHECK(moh::SafetensorsFile(dir + "/m.safetensors").meta("kind") == "vit");
  CHECK(moh::SafetensorsFile(dir + "/m.ckpt.safetensors").meta("step") == "2");

  rc = moh::test::run_command(app + " dit --config " + dir + "/tiny.json --data " + synthetic_dir(), &log);
  CHECK(rc == 1);
  CHECK(moh::test::contains(log, "moh-train vit"));
  cfg["train"]["learning_rate"] = 0.1;
  {
    std::ofstream(dir + "/typo.json") << cfg.dump(2);
  }
  rc = moh::test::run_command(app + " vit --config " + dir + "/typo.json --data " + synthetic_dir(), &log);
  CHECK(rc == 1);
  CHECK(moh::test::contains(log, "learning_rate"));
  rc = moh::test::run_command(app + " vit --config " + dir + "/tiny.json --data " + dir + "/nowhere --steps 1", &log);
  CHECK(rc == 1);
  CHECK(moh::test::contains(log, "not found"));
}
