// moh-convert: a downloaded PyTorch checkpoint (or any weights file) -> self-describing safetensors with the official
// key names. Thin CLI over common/weights/convert_weights.h (restricted unpickler, nothing executed; streamed tensor by
// tensor so memory stays flat; written atomically). Metadata: source file name and sha256, the entry used,
// the dtype policy, the training `args` when present, and with --model the preset's kind and config.
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
#include "dit/config.h"
#include "vit/config.h"

namespace {

// --model: a ViT or DiT preset (or a config .json of either) -> metadata "kind" + "config", as moh-train writes them.
void add_model_metadata(const std::string& model, std::map<std::string, std::string>& meta) {
  if (moh::vit::is_vit_preset(model)) {
    const auto cfg = moh::vit::vit_preset(model);
    meta["kind"] = "vit";
    meta["model"] = cfg.name;
    meta["config"] = moh::vit::vit_config_to_json(cfg).dump();
    return;
  }
  if (moh::dit::is_dit_preset(model)) {
    const auto cfg = moh::dit::dit_preset(model);
    meta["kind"] = "dit";
    meta["model"] = cfg.name;
    meta["config"] = cfg.to_json().dump();
    return;
  }
  std::string vit_err;
  try {
    const auto cfg = moh::vit::resolve_vit_config(model);
    meta["kind"] = "vit";
    meta["model"] = cfg.name;
    meta["config"] = moh::vit::vit_config_to_json(cfg).dump();
    return;
  } catch (const moh::Error& e) {
    vit_err = e.what();
  }
  try {
    const auto cfg = moh::dit::resolve_dit_config(model);
    meta["kind"] = "dit";
    meta["model"] = cfg.name;
    meta["config"] = cfg.to_json().dump();
  } catch (const moh::Error& e) {
    throw moh::Error("--model '" + model + "' is neither a MoH-ViT nor a MoH-DiT preset or config file (ViT: " + vit_err +
                     "; DiT: " + e.what() + ")");
  }
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
    if (!model.empty()) add_model_metadata(model, co.metadata);  // before reading anything: a typo fails fast
    const auto r = moh::convert_to_safetensors(co);
    std::cout << "moh-convert: wrote '" << out << "': " << r.tensors << " tensors, " << r.data_bytes << " bytes of "
              << (co.dtype ? dtype : std::string("original-dtype")) << " data from " << r.source_description << "\n";
    return 0;
  });
}
