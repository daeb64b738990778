// moh-serve: the MoH-ViT classifier and the MoH-DiT generator behind an HTTP API and a web page (issue 26). Thin
// CLI over serve/server.h: loads the models once through the library API (vit/classifier.h, dit/generator.h),
// binds, prints the address, serves until SIGTERM / Ctrl-C (then stops accepting, cancels the jobs and exits 0).
// Built only when cpp-httplib is found (serve/CMakeLists.txt).
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "apps/app_main.h"
#include "common/runtime/device.h"
#include "common/error.h"
#include "common/runtime/interrupt.h"
#include "common/runtime/precision.h"
#include "dit/generator.h"
#include "serve/server.h"
#include "vit/classifier.h"

int main(int argc, char** argv) {
  return moh::run_app("moh-serve", [&]() -> int {
    CLI::App app{"Serve MoH-ViT classification and MoH-DiT generation over HTTP (JSON API + a web page at /).\n"
                 "Example (the demo models):\n"
                 "  moh-serve --vit models/moh-vit-fmnist.safetensors --dit models/moh-dit-fmnist.safetensors\n"
                 "Endpoints: POST /v1/classify, POST /v1/generate, GET|DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/preview.png,\n"
                 "GET /v1/jobs/{id}/images/{k}.png, GET /v1/jobs/{id}/generation.json, GET /v1/models, GET /healthz,\n"
                 "GET /metrics, GET / (README: Serving)."};
    moh::serve::ServeOptions so;
    std::string vit_model, dit_model, vae, vae_config = "sd-vae-ft-ema", device = "auto", dtype = "auto";
    int threads = 0;
    app.add_option("--vit", so.vit_weights, "MoH-ViT weights (classification; e.g. models/moh-vit-fmnist.safetensors)");
    app.add_option("--vit-model", vit_model, "ViT preset or config .json when the weights record none");
    app.add_option("--dit", so.dit_weights, "MoH-DiT weights (generation; e.g. models/moh-dit-fmnist.safetensors)");
    app.add_option("--dit-model", dit_model, "DiT preset or config .json when the weights record none");
    app.add_option("--vae", vae, "SD VAE weights for latent DiT models");
    app.add_option("--vae-config", vae_config, "VAE architecture when its file records none (default sd-vae-ft-ema)");
    app.add_option("--host", so.host, "address to listen on (default 127.0.0.1: this machine only)");
    app.add_option("--port", so.port, "port (default 8080; 0 = any free port, printed)")->check(CLI::Range(0, 65535));
    app.add_option("--token", so.token, "require 'Authorization: Bearer TOKEN' on every endpoint but /healthz");
    app.add_option("--max-upload-mb", so.max_upload_mb, "largest request body in MB; larger ones get 413 (default 16)")
        ->check(CLI::PositiveNumber);
    app.add_option("--max-batch", so.max_batch, "classify: images per forward pass (default 16)")->check(CLI::Range(1, 1024));
    app.add_option("--batch-window-ms", so.batch_window_ms, "classify: how long a request waits for others to batch "
                                                            "with (default 5)")->check(CLI::Range(0, 10000));
    app.add_option("--max-queue", so.max_queue, "generate: jobs queued or running before 429 (default 8)")
        ->check(CLI::Range(1, 100000));
    app.add_option("--max-images-per-job", so.max_images_per_job, "generate: most images one request asks (default 16)")
        ->check(CLI::Range(1, 100000));
    app.add_option("--http-threads", so.http_threads, "connections served at once (default 32)")->check(CLI::Range(1, 1024));
    app.add_option("--device", device, "auto|cpu|cuda[:N] (default auto)");
    app.add_option("--dtype", dtype, "auto|fp32|mixed|bf16|fp16 (default auto)");
    moh::add_threads_option(app, threads);
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    MOH_CHECK(!so.vit_weights.empty() || !so.dit_weights.empty(),
              "nothing to serve: give --vit (classification), --dit (generation) or both, e.g. --vit "
              "models/moh-vit-fmnist.safetensors --dit models/moh-dit-fmnist.safetensors");
    moh::apply_threads_option(threads);
    const auto dev_checked = moh::with_flag("--device", [&] { return moh::parse_device(device); });
    moh::with_flag("--dtype", [&] { moh::parse_precision(dtype, dev_checked); });

    std::unique_ptr<moh::vit::Classifier> clf;
    if (!so.vit_weights.empty()) {
      moh::vit::ClassifierOptions co;
      co.weights = so.vit_weights;
      co.model = vit_model;
      co.device = device;
      co.dtype = dtype;
      clf = moh::with_flag("--vit", [&] { return std::make_unique<moh::vit::Classifier>(co); });
    }
    std::unique_ptr<moh::dit::Generator> gen;
    if (!so.dit_weights.empty()) {
      moh::dit::GeneratorOptions go;
      go.weights = so.dit_weights;
      go.model = dit_model;
      go.vae = vae;
      go.vae_config = vae_config;
      go.device = device;
      go.dtype = dtype;
      auto src = moh::with_flag("--dit", [&] { return moh::dit::Generator::resolve(go); });
      MOH_CHECK(!vae.empty() || src.pixel_space, "--vae is required: model ", src.config.name, " generates ",
                src.config.in_channels, "-channel latents; pass the SD VAE weights");
      gen = std::make_unique<moh::dit::Generator>(go, std::move(src));
    }

    moh::serve::Server server(so, clf.get(), gen.get());
    const int port = server.bind();
    std::cout << "moh-serve: listening on http://" << (so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host)
              << ":" << port << "/" << (clf ? "  classifier " + clf->config().name : "")
              << (gen ? "  generator " + gen->config().name : "") << std::endl;
    // SIGTERM / Ctrl-C only set a flag (common/runtime/interrupt.h); this thread turns it into an orderly stop.
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      while (!done) {
        if (moh::interrupt_signal() != 0) server.shutdown();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    server.run();
    done = true;
    watcher.join();
    if (const int sig = moh::interrupt_signal())
      std::cout << "moh-serve: stopped by signal " << sig << "; running jobs were cancelled" << std::endl;
    return 0;
  });
}
