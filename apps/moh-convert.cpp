// moh-convert: a downloaded PyTorch checkpoint (or any weights file) -> self-describing safetensors with the official
// key names. Reads through common/weights_file.h (restricted unpickler, nothing executed), streams tensor by
// tensor so memory stays flat, and writes atomically. Metadata: source file name and sha256, the entry used,
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
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/safetensors.h"
#include "common/sha256.h"
#include "common/weights_file.h"
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

std::string base_name(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
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
    std::optional<torch::Dtype> target;
    if (dtype == "fp32") target = torch::kFloat32;
    else if (dtype == "fp16") target = torch::kFloat16;
    else if (dtype == "bf16") target = torch::kBFloat16;
    else MOH_CHECK(dtype == "keep", "--dtype must be keep, fp32, fp16 or bf16 (got '", dtype, "')");

    std::map<std::string, std::string> meta;
    if (!model.empty()) add_model_metadata(model, meta);  // before reading anything: a typo fails fast
    moh::WeightsFile file(in, key);
    for (const auto& [k, v] : file.metadata()) meta.emplace(k, v);  // a safetensors input keeps its metadata
    const bool torch_in = file.format() == moh::WeightsFormat::TorchZip;
    meta["format"] = model.empty() ? meta.count("format") ? meta["format"] : "pt" : "moh-model-v1";
    meta["source"] = base_name(in);
    meta["source_sha256"] = moh::sha256_file(in);
    meta["source_format"] = torch_in ? "pytorch" : "safetensors";
    if (torch_in) meta["source_key"] = file.key_used().empty() ? "(top-level dict)" : file.key_used();
    meta["dtype"] = dtype;
    meta["converted_by"] = "moh-convert";
    if (!file.args_json().empty()) meta["training_args"] = file.args_json();

    // Header first (shapes and dtypes need no tensor data), then the tensors one at a time.
    std::vector<moh::TensorEntry> entries;
    std::vector<torch::Dtype> out_dtypes;
    uint64_t offset = 0;
    for (const auto& name : file.names()) {
      MOH_CHECK(name != "__metadata__", "'", in, "' has a tensor named '__metadata__', which safetensors reserves");
      torch::Dtype dt = file.dtype(name);
      if (target && c10::isFloatingType(dt)) dt = *target;
      moh::TensorEntry e;
      e.name = name;
      e.dtype = moh::from_torch_dtype(dt);
      e.shape = file.shape(name);
      e.begin = offset;
      e.end = offset + static_cast<uint64_t>(e.numel()) * moh::dtype_size(e.dtype);
      offset = e.end;
      entries.push_back(e);
      out_dtypes.push_back(dt);
    }
    const std::string header = moh::build_safetensors_header(entries, meta);
    moh::AtomicFile f(out);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
    f.write(len, 8);
    f.write(header.data(), header.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      auto t = file.tensor(entries[i].name);
      if (t.scalar_type() != out_dtypes[i]) t = t.to(out_dtypes[i]);
      t = t.contiguous();
      f.write(t.data_ptr(), static_cast<size_t>(entries[i].end - entries[i].begin));
      t = torch::Tensor();
      file.release(entries[i].name);  // keeps the resident set flat on multi-GB inputs
    }
    f.commit();
    std::cout << "moh-convert: wrote '" << out << "': " << entries.size() << " tensors, " << offset << " bytes of "
              << (target ? dtype : std::string("original-dtype")) << " data from " << file.description() << "\n";
    return 0;
  });
}
