// Weights conversion to safetensors (common/weights/convert_weights.h).
#include "common/weights/convert_weights.h"

#include <vector>

#include "common/io/atomic_file.h"
#include "common/error.h"
#include "common/weights/safetensors.h"
#include "common/io/sha256.h"
#include "common/weights/weights_file.h"

namespace moh {

namespace {
std::string base_name(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
}  // namespace

std::optional<torch::Dtype> parse_convert_dtype(const std::string& spec) {
  if (spec == "fp32") return torch::kFloat32;
  if (spec == "fp16") return torch::kFloat16;
  if (spec == "bf16") return torch::kBFloat16;
  MOH_CHECK(spec == "keep", "dtype must be keep, fp32, fp16 or bf16 (got '", spec, "')");
  return std::nullopt;
}

ConvertResult convert_to_safetensors(const ConvertOptions& o) {
  std::map<std::string, std::string> meta = o.metadata;
  WeightsFile file(o.input, o.key);
  for (const auto& [k, v] : file.metadata()) meta.emplace(k, v);  // a safetensors input keeps its metadata
  const bool torch_in = file.format() == WeightsFormat::TorchZip;
  const bool described = o.metadata.count("config") > 0;
  meta["format"] = described ? "moh-model-v1" : meta.count("format") ? meta["format"] : "pt";
  meta["source"] = base_name(o.input);
  meta["source_sha256"] = sha256_file(o.input);
  meta["source_format"] = torch_in ? "pytorch" : "safetensors";
  if (torch_in) meta["source_key"] = file.key_used().empty() ? "(top-level dict)" : file.key_used();
  meta["dtype"] = o.dtype_name.empty() ? "keep" : o.dtype_name;
  meta["converted_by"] = "moh-convert";
  if (!file.args_json().empty()) meta["training_args"] = file.args_json();

  // Header first (shapes and dtypes need no tensor data), then the tensors one at a time.
  std::vector<TensorEntry> entries;
  std::vector<torch::Dtype> out_dtypes;
  uint64_t offset = 0;
  for (const auto& name : file.names()) {
    MOH_CHECK(name != "__metadata__", "'", o.input, "' has a tensor named '__metadata__', which safetensors reserves");
    torch::Dtype dt = file.dtype(name);
    if (o.dtype && c10::isFloatingType(dt)) dt = *o.dtype;
    TensorEntry e;
    e.name = name;
    e.dtype = from_torch_dtype(dt);
    e.shape = file.shape(name);
    e.begin = offset;
    e.end = offset + static_cast<uint64_t>(e.numel()) * dtype_size(e.dtype);
    offset = e.end;
    entries.push_back(e);
    out_dtypes.push_back(dt);
  }
  const std::string header = build_safetensors_header(entries, meta);
  AtomicFile f(o.output);
  uint8_t len[8];  // little-endian header length
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
  return {static_cast<int64_t>(entries.size()), offset, file.description()};
}

}  // namespace moh
