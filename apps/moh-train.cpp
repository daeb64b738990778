// moh-train vit|dit --config models/<tiny>.json --data DIR --out model.safetensors [...]: trains the demo models
// (a tiny MoH-TransNeXt classifier, a tiny pixel-space MoH-DiT) on Fashion-MNIST with the toolkit itself.
// The config file holds {"kind", "model": {constructor kwargs}, "train": {defaults}, "preprocess" (vit),
// "class_names"}; flags given on the command line override its "train" values. Library: vit/train.h, dit/train.h.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "apps/app_main.h"
#include "common/error.h"
#include "common/io/json_file.h"
#include "common/datasets/idx.h"
#include "common/runtime/progress.h"
#include "common/train/trainer.h"
#include "dit/train.h"
#include "vit/train.h"

namespace {

// Log lines on stdout (kept in logs) and a progress bar on stderr.
struct Reporter {
  moh::Progress bar;
  int64_t shown = 0;
  // The bar only on a terminal: in a log file the step lines already say everything.
  Reporter(const std::string& label, int64_t total) : bar(label, total, "steps", ::isatty(STDERR_FILENO) != 0) {}
  void operator()(const moh::TrainLog& l) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.4f (main %.4f, moh aux %.4f)  lr %.2e  |g| %.3f  %.0f samples/s",
                  (long long)l.step, (long long)l.total, l.loss, l.main, l.aux, l.lr, l.grad_norm, l.samples_per_s);
    std::cout << buf << std::endl;
    std::snprintf(buf, sizeof buf, "loss %.4f  %.0f samples/s", l.loss, l.samples_per_s);
    bar.set_suffix(buf);
    bar.advance(l.step - shown);
    shown = l.step;
  }
};

}  // namespace

int main(int argc, char** argv) {
  return moh::run_app("moh-train", [&]() -> int {
    CLI::App app{"Train the demo models on Fashion-MNIST: 'vit' (MoH-TransNeXt classifier) or 'dit' (pixel-space\n"
                 "class-conditional MoH-DiT). The --config JSON gives the architecture and default training\n"
                 "settings (models/moh-vit-fmnist.json, models/moh-dit-fmnist.json); flags override them."};
    std::string kind, config_path, data, out, resume, ckpt, device;
    int64_t steps = 0, batch = 0, warmup = 0, log_every = 0, ckpt_every = 0, eval_limit = 0, train_limit = 0;
    double lr = 0, time_limit = 0;
    uint64_t seed = 0;
    app.add_option("kind", kind, "vit or dit")->required()->check(CLI::IsMember({"vit", "dit"}));
    app.add_option("--config", config_path, "model + training config JSON")->required();
    auto* o_data = app.add_option("--data", data, "folder with the Fashion-MNIST *-ubyte(.gz) files (default: the "
                                                  "Debian dataset-fashion-mnist folder)");
    auto* o_out = app.add_option("--out", out, "trained weights (.safetensors, official key names)");
    auto* o_steps = app.add_option("--steps", steps, "optimizer steps");
    auto* o_batch = app.add_option("--batch-size", batch, "images per step");
    auto* o_lr = app.add_option("--lr", lr, "peak learning rate");
    auto* o_warmup = app.add_option("--warmup", warmup, "linear warm-up steps");
    auto* o_seed = app.add_option("--seed", seed, "seed of init, data order, augmentation and noise");
    auto* o_device = app.add_option("--device", device, "auto, cpu, cuda, cuda:N");
    auto* o_resume = app.add_option("--resume", resume, "continue from this checkpoint (.ckpt.safetensors)");
    std::string init_from;
    auto* o_init = app.add_option("--init-from", init_from, "start from these weights (.safetensors with --config's "
                                  "architecture, e.g. moh-convert --to-moh output) instead of the random init; a "
                                  "new run: fresh optimizer, schedule and EMA")->excludes(o_resume);
    auto* o_ckpt = app.add_option("--ckpt", ckpt, "checkpoint to write (default: <out without .safetensors>.ckpt.safetensors)");
    auto* o_ckpt_every = app.add_option("--ckpt-every", ckpt_every, "also checkpoint every N steps");
    auto* o_log = app.add_option("--log-every", log_every, "steps per log line");
    auto* o_eval = app.add_option("--eval-limit", eval_limit, "vit: test images to evaluate (0 = all, -1 = skip)");
    auto* o_tlimit = app.add_option("--train-limit", train_limit, "use only the first N training images");
    auto* o_time = app.add_option("--time-limit", time_limit, "wall-clock budget in seconds: fewer steps (with the lr "
                                                              "schedule fitted to them) when --steps would not fit");
    int threads = 0;
    moh::add_threads_option(app, threads);
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    moh::apply_threads_option(threads);

    const nlohmann::json j = moh::read_json_file(config_path, "training config");
    if (j.contains("kind"))
      MOH_CHECK(j["kind"] == kind, "config '", config_path, "' is for a '", j["kind"].get<std::string>(),
                "' model; run moh-train ", j["kind"].get<std::string>(), " or pick another config");
    const nlohmann::json train_json = j.contains("train") ? j["train"] : nlohmann::json::object();
    auto apply_flags = [&](moh::TrainCommonOptions& c) {
      if (o_data->count()) c.data_dir = data;
      if (c.data_dir.empty()) c.data_dir = moh::default_fashion_mnist_dir();
      if (o_out->count()) c.out = out;
      if (o_steps->count()) c.steps = steps;
      if (o_batch->count()) c.batch_size = batch;
      if (o_lr->count()) c.lr = lr;
      if (o_warmup->count()) c.warmup = warmup;
      if (o_seed->count()) c.seed = seed;
      if (o_device->count()) c.device = device;
      if (o_resume->count()) c.resume = resume;
      if (o_init->count()) c.init_from = init_from;
      if (o_ckpt->count()) c.ckpt = ckpt;
      else if (c.ckpt.empty() && !c.out.empty()) {
        const std::string ext = ".safetensors";
        const bool has_ext = c.out.size() > ext.size() && c.out.compare(c.out.size() - ext.size(), ext.size(), ext) == 0;
        c.ckpt = (has_ext ? c.out.substr(0, c.out.size() - ext.size()) : c.out) + ".ckpt.safetensors";
      }
      if (o_ckpt_every->count()) c.ckpt_every = ckpt_every;
      if (o_log->count()) c.log_every = log_every;
      if (o_tlimit->count()) c.train_limit = train_limit;
      if (o_time->count()) c.time_limit_s = time_limit;
      MOH_CHECK(!c.data_dir.empty(), "no Fashion-MNIST folder: pass --data DIR (the folder with "
                "train-images-idx3-ubyte.gz and friends)");
    };

    if (kind == "vit") {
      moh::vit::ViTConfig cfg = moh::vit::vit_config_from_json(j, "config '" + config_path + "'");
      moh::vit::FmnistPreprocess pre;
      if (j.contains("preprocess")) pre = moh::vit::FmnistPreprocess::from_json(j["preprocess"], config_path);
      moh::vit::ViTTrainOptions opt;
      opt.update_from_json(train_json, "\"train\" in '" + config_path + "'");
      apply_flags(opt.common);
      if (o_eval->count()) opt.eval_limit = eval_limit;
      Reporter rep("train vit", opt.common.steps);
      auto r = moh::vit::train_vit(cfg, pre, opt, std::ref(rep));
      rep.bar.finish();
      std::cout << "trained " << r.steps_done << " steps, final loss " << r.final_loss << "\n";
      if (!opt.common.out.empty()) std::cout << "weights written to " << opt.common.out << "\n";
      if (r.test_accuracy >= 0)
        std::printf("test accuracy %.2f %% (%lld Fashion-MNIST test images)\n", 100.0 * r.test_accuracy,
                    (long long)r.test_images);
    } else {
      moh::dit::DiTConfig cfg = moh::dit::DiTConfig::from_json(j, "config '" + config_path + "'");
      std::vector<std::string> names;
      if (j.contains("class_names")) names = j["class_names"].get<std::vector<std::string>>();
      moh::dit::DiTTrainOptions opt;
      opt.update_from_json(train_json, "\"train\" in '" + config_path + "'");
      if (j.contains("sampling")) {
        opt.sampling = j["sampling"];
        opt.sampling.erase("pixel_space");  // data conventions: written by train_dit itself
        opt.sampling.erase("data_range");
      }
      apply_flags(opt.common);
      Reporter rep("train dit", opt.common.steps);
      auto r = moh::dit::train_dit(cfg, opt, names, std::ref(rep));
      rep.bar.finish();
      std::cout << "trained " << r.steps_done << " steps, final loss " << r.final_loss << "\n";
      if (!opt.common.out.empty()) std::cout << "weights written to " << opt.common.out << "\n";
    }
    return 0;
  });
}
