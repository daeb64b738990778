// moh-routes: see which heads each token uses. For a MoH-ViT and one image, or a MoH-DiT and one sampling run,
// writes one heat-map PNG per routed head of every routed layer (the gate over the token grid on the picture), a
// contact sheet of them all and routes.json (per layer: heads, shared, routed, top-k, per-head loads, the computed
// fraction of (token, head) pairs = skipping ratio, load entropy). No official counterpart.
// Thin CLI over vit/routes.h, dit/routes.h and common/routes/report.h; the folder appears only when complete.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <optional>

#include "apps/app_main.h"
#include "common/error.h"
#include "common/runtime/precision.h"
#include "common/image/heatmap.h"
#include "common/image/image_io.h"
#include "common/routes/report.h"
#include "dit/generator.h"
#include "dit/routes.h"
#include "vit/classifier.h"
#include "vit/routes.h"

namespace {

struct Settings {
  std::string out_dir, colors = "auto";
  bool overwrite = false;
  int64_t scale = 0;  // 0: enlarge small pictures to at least kMinSide pixels
  double alpha = 0.55;
};
constexpr int64_t kMinSide = 192;

int64_t display_scale(const Settings& s, int64_t side) {
  return s.scale > 0 ? s.scale : std::max<int64_t>(1, (kMinSide + side - 1) / side);
}

std::string backend_of(const Settings& s) {
  return s.colors == "auto" ? moh::heatmap_backends().back() : s.colors;  // OpenCV when built with it
}

void print_layers(const std::vector<moh::RouteLayerStats>& layers, const std::string& prefix) {
  for (const auto& st : layers) {
    if (!st.layer().routed()) continue;
    std::printf("%s%-10s heads %lld shared %lld top-%lld  skipping ratio %.4f (expected %.4f%s)  entropy %.3f\n",
                prefix.c_str(), st.layer().name.c_str(), (long long)st.layer().gates.num_heads,
                (long long)st.layer().gates.shared_head, (long long)st.layer().gates.routed_head,
                st.computed_fraction(), st.expected_fraction(), st.computed_matches_expected() ? "" : ", MISMATCH",
                st.load_entropy());
  }
}

}  // namespace

int main(int argc, char** argv) {
  return moh::run_app("moh-routes", [&]() -> int {
    CLI::App app{
        "See the MoH routing: which heads each token uses. Writes into --out one PNG per routed head of every layer\n"
        "that has routed heads (the head's gate per token as a heat map over the picture: dark blue = 0, dark red =\n"
        "the layer's largest gate), contact_sheet.png (one row per layer: the picture, then its routed heads) and\n"
        "routes.json (per layer: heads, shared, routed, top_k, each routed head's load = fraction of tokens that\n"
        "selected it, skipping_ratio = computed (token, head) pairs / dense, load_entropy in [0, 1]).\n"
        "MoH-ViT, one image (the preprocessed input the model sees):\n"
        "  moh-routes --weights models/moh-vit-fmnist.safetensors shirt.png --out routes/\n"
        "  moh-routes --model moh-vit-s-80 --weights moh_transnext_small_80.pth cat.jpg --out cat-routes/\n"
        "MoH-DiT, one sampling run: maps averaged over the early / middle / late thirds of the steps, on the\n"
        "generated image (written as generated.png):\n"
        "  moh-routes --weights models/moh-dit-fmnist.safetensors --class Trouser --seed 3 --out trouser-routes/\n"
        "  moh-routes --model MoH-DiT-XL/2-90 --weights dit.pt --vae vae.safetensors --class 207 --out dog/"};
    std::string weights, model_spec, image, class_name, device_spec = "auto", dtype_spec = "auto";
    std::string vae_path, vae_config_spec = "sd-vae-ft-ema", sampler = "ddpm";
    std::optional<int64_t> steps;
    std::optional<double> cfg_scale;
    uint64_t seed = 0;
    int64_t bands = 3;
    int64_t max_image_pixels = moh::kDefaultMaxImagePixels;
    int threads = 0;
    bool quiet = false;
    Settings s;
    app.add_option("--weights", weights, "MoH-ViT or MoH-DiT weights (a self-describing .safetensors such as the "
                                         "demo models, or an official checkpoint with --model)")->required();
    app.add_option("--model", model_spec, "preset or config .json, needed when the weights record no config");
    app.add_option("image", image, "MoH-ViT: the picture to route (JPEG/PNG/...)");
    app.add_option("--max-image-pixels", max_image_pixels, "refuse pictures with more pixels than this, read from their "
                   "header before decoding (default 178956970, Pillow's decompression-bomb limit)")
        ->check(CLI::PositiveNumber);
    app.add_option("--class", class_name, "MoH-DiT: the class to generate (index or class name)");
    app.add_option("--seed", seed, "MoH-DiT: random seed of the sampling run (default 0)");
    app.add_option("--steps", steps, "MoH-DiT: sampling steps (default: the model's recorded setting, else 250)");
    app.add_option("--cfg-scale", cfg_scale, "MoH-DiT: guidance scale (default: recorded setting, else 1.5); the "
                                             "maps show the conditional pass");
    app.add_option("--sampler", sampler, "MoH-DiT: ddpm (default) or ddim")->check(CLI::IsMember({"ddpm", "ddim"}));
    app.add_option("--bands", bands, "MoH-DiT: timestep bands of the run (default 3: early, middle, late)");
    app.add_option("--vae", vae_path, "MoH-DiT latent models: SD VAE weights");
    app.add_option("--vae-config", vae_config_spec,
                   "VAE architecture when the file records none (default sd-vae-ft-ema)");
    app.add_option("--out", s.out_dir, "output folder (created; must be new or empty unless --overwrite)")->required();
    app.add_flag("--overwrite", s.overwrite, "allow an existing non-empty --out (same-named files are replaced)");
    app.add_option("--scale", s.scale, "enlarge the picture by this integer factor (default: to at least 192 px)");
    app.add_option("--alpha", s.alpha, "weight of the colours over the picture, 0..1 (default 0.55)")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--colors", s.colors, "auto (OpenCV when built with it), own or opencv")
        ->check(CLI::IsMember({"auto", "own", "opencv"}));
    app.add_option("--device", device_spec, "auto|cpu|cuda[:N] (default auto)");
    app.add_option("--dtype", dtype_spec, "auto|fp32|mixed|bf16|fp16 (default auto: mixed on CUDA = bf16 GEMMs with fp32 LayerNorm/router/residual stream, as the official autocast; fp32 on CPU)");
    moh::add_threads_option(app, threads);
    app.add_flag("-q,--quiet", quiet, "no progress bar");
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    moh::apply_threads_option(threads);
    MOH_CHECK(image.empty() != class_name.empty(), "give either an IMAGE (MoH-ViT weights) or --class NAME (MoH-DiT "
              "weights), not ", image.empty() ? "neither" : "both", "; see moh-routes --help");
    const auto backend = backend_of(s);
    moh::StagedDir out(s.out_dir, s.overwrite);  // an unwritable --out fails before any model work
    moh::RouteMapOptions mo;
    mo.alpha = s.alpha;
    mo.backend = backend;
    nlohmann::json j = {{"tool", "moh-routes"}, {"weights", weights}, {"colors", backend}, {"alpha", s.alpha},
                        {"definitions", moh::route_definitions()}};

    if (!image.empty()) {  // ------------------------------------------------------------------ MoH-ViT
      moh::vit::ClassifierOptions co;
      co.weights = weights;
      co.model = model_spec;
      co.device = device_spec;
      co.dtype = dtype_spec;
      moh::vit::Classifier clf(co);
      moh::ImageDecodeOptions decode;
      decode.max_pixels = max_image_pixels;
      const auto r = moh::vit::vit_routes(clf, moh::decode_image_file(image, decode));
      const int64_t S = r.input.size(-1), k = display_scale(s, S);
      const auto base = moh::display_image(r.input, k);  // [S*k, S*k, 3]
      const auto maps = moh::render_route_maps(r.layers, base, mo);
      for (const auto& m : maps) out.write_png(m.file, m.image);
      out.write_png("input.png", base);
      out.write_png("contact_sheet.png", moh::route_contact_sheet(base, maps));
      auto pred = nlohmann::json::array();
      for (const auto& p : r.top)
        pred.push_back({{"index", p.index}, {"name", p.label}, {"probability", p.probability}});
      j.update({{"kind", "vit"}, {"model", clf.config().name}, {"model_config_origin", clf.config_origin()},
                {"image", image}, {"input_size", {S, S}}, {"display_scale", k}, {"picture_size", {S * k, S * k}},
                {"prediction", pred}, {"layers", moh::route_layers_json(r.layers, maps)},
                {"contact_sheet", {{"file", "contact_sheet.png"}, {"rows", moh::contact_sheet_layout(maps)}}}});
      print_layers(r.layers, "");
      if (!r.top.empty()) std::printf("predicted: %s (%.3f)\n", r.top[0].label.c_str(), r.top[0].probability);
    } else {  // ----------------------------------------------------------------------------------- MoH-DiT
      moh::dit::GeneratorOptions go;
      go.weights = weights;
      go.model = model_spec;
      go.vae = vae_path;
      go.vae_config = vae_config_spec;
      go.device = device_spec;
      go.dtype = dtype_spec;
      moh::dit::Generator gen(go);
      auto p = gen.default_params();  // the official defaults with the weights' recorded sampler settings
      if (steps) p.steps = *steps;
      if (cfg_scale) p.cfg_scale = *cfg_scale;
      p.sampler = sampler;
      p.seed = seed;
      p.batch_size = 1;
      p.progress = !quiet;
      p.labels = gen.resolve_classes({class_name});
      const auto r = moh::dit::dit_routes(gen.model(), gen.vae(), p, gen.device(), bands);
      const int64_t side = r.image_u8.size(0), k = display_scale(s, side);
      const auto base = moh::enlarge(r.image_u8, k);
      out.write_png("generated.png", r.image_u8);
      std::vector<moh::RouteMapImage> all_maps;
      auto bands_json = nlohmann::json::array();
      for (const auto& b : r.bands) {
        mo.prefix = b.name + "_";
        const auto maps = moh::render_route_maps(b.layers, base, mo);
        for (const auto& m : maps) out.write_png(m.file, m.image);
        bands_json.push_back({{"name", b.name}, {"steps", {b.first_step, b.last_step}},
                              {"timesteps", {b.first_timestep, b.last_timestep}},
                              {"layers", moh::route_layers_json(b.layers, maps)}});
        all_maps.insert(all_maps.end(), maps.begin(), maps.end());
        print_layers(b.layers, b.name + " ");
      }
      out.write_png("contact_sheet.png", moh::route_contact_sheet(base, all_maps));
      j.update({{"kind", "dit"}, {"model", gen.config().name}, {"generator", gen.describe()},
                {"class", {{"index", p.labels[0]}, {"name", gen.class_name(p.labels[0])}}},
                {"seed", seed}, {"settings", moh::dit::params_to_json(p)}, {"image", "generated.png"},
                {"image_size", {side, side}}, {"display_scale", k}, {"picture_size", {side * k, side * k}},
                {"bands_note", "steps: sampler calls, 0 = the first (noisiest); timesteps: the original 0..999 "
                               "timesteps of those calls; maps and loads: the conditional pass, averaged over the "
                               "band's steps"},
                {"bands", bands_json},
                {"contact_sheet", {{"file", "contact_sheet.png"}, {"rows", moh::contact_sheet_layout(all_maps)}}}});
    }
    auto files = out.files();
    files.push_back("routes.json");
    j["files"] = files;
    out.write_text("routes.json", j.dump(2) + "\n");
    out.commit();
    std::cout << "wrote " << out.files().size() << " files to " << s.out_dir << "\n";
    return 0;
  });
}
