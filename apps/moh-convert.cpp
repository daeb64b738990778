// moh-convert: a downloaded PyTorch checkpoint (or any weights file) -> self-describing safetensors with the official
// key names. Thin CLI over common/weights/convert_weights.h (restricted unpickler, nothing executed; streamed tensor by
// tensor so memory stays flat; written atomically). Metadata: source file name and sha256, the entry used,
// the dtype policy, the training `args` when present, and with --model the preset's kind and config.
// --to-moh CONFIG: a dense DiT / TransNeXt becomes a MoH model of that config (common/moh/dense_to_moh.h), checked by
// loading it strictly into the target model before it is written.
// Exit codes: 0 written, 1 bad input, 2 unsupported request.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "apps/app_main.h"
#include "common/weights/convert_weights.h"
#include "common/error.h"
#include "common/moh/dense_to_moh.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"
#include "dit/config.h"
#include "dit/model.h"
#include "dit/routes.h"
#include "vit/config.h"
#include "vit/model.h"
#include "vit/routes.h"

namespace {

// A --model / --to-moh value resolved once: a ViT or DiT preset, or a config .json of either.
struct ModelSpec {
  std::optional<moh::vit::ViTConfig> vit;
  std::optional<moh::dit::DiTConfig> dit;
};

ModelSpec resolve_model(const std::string& model) {
  if (moh::vit::is_vit_preset(model)) return {moh::vit::vit_preset(model), std::nullopt};
  if (moh::dit::is_dit_preset(model)) return {std::nullopt, moh::dit::dit_preset(model)};
  std::string vit_err;
  try {
    return {moh::vit::resolve_vit_config(model), std::nullopt};
  } catch (const moh::Error& e) {
    vit_err = e.what();
  }
  try {
    return {std::nullopt, moh::dit::resolve_dit_config(model)};
  } catch (const moh::Error& e) {
    throw moh::Error("--model '" + model + "' is neither a ViT (MoH-ViT / TransNeXt) nor a DiT (MoH-DiT / DiT) "
                     "preset or config file (ViT: " + vit_err +
                     "; DiT: " + e.what() + ")");
  }
}

// Metadata "kind" + "model" + "config", as moh-train writes them.
void add_model_metadata(const ModelSpec& m, std::map<std::string, std::string>& meta) {
  meta["kind"] = m.vit ? "vit" : "dit";
  meta["model"] = m.vit ? m.vit->name : m.dit->name;
  meta["config"] = (m.vit ? moh::vit::vit_config_to_json(*m.vit) : m.dit->to_json()).dump();
}

// --to-moh: the converted tensors are loaded strictly into the target model (every key, every shape) before
// anything is written; the temporary plain conversion next to `out` is removed whatever happens.
int convert_dense_to_moh(moh::ConvertOptions co, const std::string& target, uint64_t seed) {
  const ModelSpec spec = resolve_model(target);
  MOH_CHECK(spec.vit ? spec.vit->moh : spec.dit->moh, "--to-moh '", target,
            "' is a dense model; give the MoH config to convert to");
  std::map<std::string, std::string> target_meta;
  add_model_metadata(spec, target_meta);
  const auto route_layers = spec.vit ? moh::vit::vit_route_layers(*spec.vit) : moh::dit::dit_route_layers(*spec.dit);
  std::vector<moh::AttentionLayerGates> layers;
  for (const auto& l : route_layers) layers.push_back({l.name + ".attn", l.gates});
  std::shared_ptr<torch::nn::Module> model;  // the target, for the strict check
  if (spec.vit) model = std::make_shared<moh::vit::TransNeXtImpl>(*spec.vit);
  else model = std::make_shared<moh::dit::DiTImpl>(*spec.dit);
  const std::string out = co.output, tmp = co.output + ".dense.tmp";
  co.output = tmp;
  struct RemoveTmp {
    std::string path;
    ~RemoveTmp() { std::remove(path.c_str()); }
  } remove_tmp{tmp};
  const auto r = moh::convert_to_safetensors(co);
  moh::SafetensorsFile dense_file(tmp);
  std::vector<std::pair<std::string, torch::Tensor>> dense;
  for (const auto& name : dense_file.names()) dense.emplace_back(name, dense_file.tensor(name));
  const auto converted = moh::add_router_layers(dense, layers, seed);
  moh::LoadOptions lo;
  lo.source = "'" + co.input + "' converted to '" + target + "' (the dense model's architecture must match the "
              "target's except the routing)";
  moh::load_state_dict(*model, {converted.begin(), converted.end()}, lo);

  auto meta = dense_file.metadata();
  for (const char* stale : {"test_accuracy", "steps", "weights"}) meta.erase(stale);  // they described the dense model
  for (const auto& [k, v] : target_meta) meta[k] = v;
  meta["format"] = "moh-model-v1";
  meta["moh_conversion"] = nlohmann::json{{"from", co.input}, {"router_init", "wg_1 = wg_0 = 0, wg ~ N(0, 0.02^2)"},
                                          {"seed", seed}}.dump();
  moh::write_safetensors(out, converted, meta);
  std::cout << "moh-convert: wrote '" << out << "': " << converted.size() << " tensors ("
            << converted.size() - dense.size() << " router layers added to " << r.tensors << " dense tensors from "
            << r.source_description << "), " << target_meta.at("kind") << " model '" << target_meta.at("model") << "'\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return moh::run_app("moh-convert", [&]() -> int {
    CLI::App app{"Convert a PyTorch checkpoint (.pth/.pt/.bin/.ckpt, torch.save zip) or safetensors file to "
                 "safetensors with the official key names.\nTraining dicts: 'ema' is used if present, else 'model', "
                 "else 'state_dict', else the top-level dict; 'module.'/'_orig_mod.' prefixes are removed.\n"
                 "Nothing in the checkpoint is executed."};
    std::string in, out, key, dtype = "keep", model;
    app.add_option("input", in, "checkpoint to read (format detected from its content)")->required();
    app.add_option("output", out, "safetensors file to write (atomically)")->required();
    app.add_option("--key", key, "top-level entry holding the weights (default: ema, model, state_dict, top level)");
    app.add_option("--dtype", dtype, "keep|fp32|fp16|bf16: floating-point tensors are cast (default keep)");
    app.add_option("--model", model, "preset or config .json to record in the metadata (e.g. moh-vit-s-80, "
                                      "MoH-DiT-XL/2-90)");
    std::string to_moh;
    uint64_t seed = 0;
    app.add_option("--to-moh", to_moh, "convert a dense DiT / TransNeXt to this MoH preset or config .json (same "
                   "widths, depths and head counts; shared_head / routed_head choose the heads): its router layers "
                   "start so that every shared head weighs 1 and each token keeps routed_head routed heads; then "
                   "continue-tune with moh-train --init-from")->excludes("--model");
    app.add_option("--seed", seed, "--to-moh: seed of the initial routed-head router weights (default 0)");
    int threads = 0;
    moh::add_threads_option(app, threads);
    if (const auto rc = moh::parse_command_line(app, argc, argv)) return *rc;
    moh::apply_threads_option(threads);
    moh::ConvertOptions co;
    co.input = in;
    co.output = out;
    co.key = key;
    co.dtype = moh::with_flag("--dtype", [&] { return moh::parse_convert_dtype(dtype); });
    co.dtype_name = dtype == "keep" ? "" : dtype;
    if (!to_moh.empty()) return convert_dense_to_moh(co, to_moh, seed);
    if (!model.empty()) add_model_metadata(resolve_model(model), co.metadata);  // before reading anything: a typo fails fast
    const auto r = moh::convert_to_safetensors(co);
    std::cout << "moh-convert: wrote '" << out << "': " << r.tensors << " tensors, " << r.data_bytes << " bytes of "
              << (co.dtype ? dtype : std::string("original-dtype")) << " data from " << r.source_description << "\n";
    return 0;
  });
}
