// Reader of the reference ("golden") files written by the official Python code (see golden.h).
#include "parity/golden.h"

#include "common/error.h"
#include "common/io/json_file.h"

namespace moh {

GoldenFile::GoldenFile(const std::string& path) : file_(std::make_shared<SafetensorsFile>(path)) {
  const std::string fmt = file_->meta("format");
  MOH_CHECK(fmt == "moh-golden-v1", "'", path, "' is not a reference file (metadata 'format' is '", fmt,
            "', expected 'moh-golden-v1')");
  const auto& meta = file_->metadata();
  config_ = meta.count("config") ? metadata_json(meta, "config", path) : nlohmann::json::object();
  tolerance_ = meta.count("recommended_tolerance") ? metadata_json(meta, "recommended_tolerance", path)
                                                   : nlohmann::json::object();
}

std::string GoldenFile::family() const { return file_->meta("family"); }

namespace {
// atol / rtol of a JSON object over `t` (entries that are absent or not numbers keep t's values).
Tolerance read_tolerance(const nlohmann::json& src, Tolerance t) {
  if (src.is_object()) {
    if (src.contains("atol") && src["atol"].is_number()) t.atol = src["atol"].get<double>();
    if (src.contains("rtol") && src["rtol"].is_number()) t.rtol = src["rtol"].get<double>();
  }
  return t;
}
}  // namespace

Tolerance GoldenFile::tolerance(const std::string& output) const {
  if (!output.empty() && tolerance_.is_object() && tolerance_.contains(output) && tolerance_[output].is_object())
    return read_tolerance(tolerance_[output], Tolerance{});
  return read_tolerance(tolerance_, Tolerance{});
}

Tolerance GoldenFile::tolerance_from(const std::string& meta_key, const Tolerance& fallback) const {
  const std::string text = file_->meta(meta_key);
  if (text.empty()) return fallback;
  return read_tolerance(metadata_json(file_->metadata(), meta_key, path()), fallback);
}

double GoldenFile::tolerance_number(const std::string& key, double fallback) const {
  if (tolerance_.is_object() && tolerance_.contains(key) && tolerance_[key].is_number())
    return tolerance_[key].get<double>();
  return fallback;
}

std::map<std::string, torch::Tensor> GoldenFile::weights() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& n : file_->names()) {
    if (n.rfind("in.", 0) == 0 || n.rfind("out.", 0) == 0 || n.rfind("mid.", 0) == 0 || n.rfind("buf.", 0) == 0)
      continue;
    out[n] = file_->tensor(n);
  }
  return out;
}

std::map<std::string, torch::Tensor> GoldenFile::weights(const std::string& prefix) const {
  std::map<std::string, torch::Tensor> out;
  for (auto& [n, t] : weights())
    if (n.rfind(prefix, 0) == 0) out[n.substr(prefix.size())] = t;
  return out;
}

std::vector<std::string> GoldenFile::names_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (const auto& n : file_->names())
    if (n.rfind(prefix, 0) == 0) out.push_back(n);
  return out;
}

Comparison compare_tensors(const torch::Tensor& ours, const torch::Tensor& ref, const Tolerance& tol) {
  Comparison c;
  auto a = ours.detach().to(torch::kCPU, torch::kFloat64);
  auto b = ref.detach().to(torch::kCPU, torch::kFloat64);
  if (a.numel() != b.numel()) {
    c.shape_ok = false;
    c.note = "shape mismatch";
    return c;
  }
  a = a.reshape(b.sizes());
  if (b.numel() == 0) {
    c.pass = true;
    return c;
  }
  auto diff = (a - b).abs();
  c.max_abs = diff.max().item<double>();
  c.max_ref = b.abs().max().item<double>();
  c.max_rel = (diff / (b.abs() + 1e-12)).max().item<double>();
  const bool finite = torch::isfinite(a).all().item<bool>();
  c.pass = finite && (diff <= tol.atol + tol.rtol * b.abs()).all().item<bool>();
  if (!finite) c.note = "non-finite values";
  return c;
}

}  // namespace moh
