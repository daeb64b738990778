// Strict weight loading by exact state_dict name (see state_dict.h); the strictness of PyTorch's
// Module.load_state_dict(strict=True), with every problem listed at once.
#include "common/weights/state_dict.h"

#include <set>
#include <sstream>

#include "common/error.h"
#include "common/weights/safetensors.h"

namespace moh {
namespace {

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

std::string apply_renames(std::string key, const LoadOptions& o) {
  for (const auto& p : o.strip_prefixes)
    if (key.compare(0, p.size(), p) == 0) key = key.substr(p.size());
  for (const auto& [from, to] : o.renames) {
    const auto pos = key.find(from);
    if (pos != std::string::npos) key.replace(pos, from.size(), to);
  }
  return key;
}

bool ignored(const std::string& key, const LoadOptions& o) {
  for (const auto& p : o.ignore_prefixes)
    if (key.compare(0, p.size(), p) == 0) return true;
  return false;
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> state_dict(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                     const LoadOptions& options) {
  std::map<std::string, torch::Tensor> targets;
  for (auto& [name, t] : state_dict(module)) targets[name] = t;

  std::map<std::string, torch::Tensor> renamed;
  for (const auto& [key, t] : tensors) {
    if (ignored(key, options)) continue;
    renamed[apply_renames(key, options)] = t;
  }

  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, target] : targets) {
    auto it = renamed.find(name);
    if (it == renamed.end()) {
      missing.push_back(name);
      continue;
    }
    const auto& src = it->second;
    const bool same = src.sizes() == target.sizes();
    const bool reshapable = options.reshape_same_numel && src.numel() == target.numel();
    if (!same && !reshapable)
      mismatched.push_back(name + ": checkpoint " + shape_str(src.sizes()) + " vs model " + shape_str(target.sizes()));
  }
  for (const auto& [name, t] : renamed)
    if (!targets.count(name)) unexpected.push_back(name + " " + shape_str(t.sizes()));

  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::ostringstream os;
    os << "weights in " << options.source << " do not match the model (" << missing.size() << " missing, "
       << unexpected.size() << " unexpected, " << mismatched.size() << " shape mismatches); "
       << "check that the model preset/config is the one these weights were trained with";
    auto list = [&os](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      os << "\n  " << what << " (" << v.size() << "):";
      for (const auto& s : v) os << "\n    " << s;
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    list("shape mismatches", mismatched);
    throw Error(os.str());
  }

  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto src = renamed.at(name).reshape(target.sizes());
    if (options.dtype && target.is_floating_point()) target.set_data(torch::empty_like(target, *options.dtype));
    target.copy_(src.to(target.device(), target.scalar_type()));
  }
}

void load_safetensors_into(torch::nn::Module& module, const SafetensorsFile& file, LoadOptions options) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : file.names())
    if (!ignored(name, options)) tensors[name] = file.tensor(name);
  if (options.source == "checkpoint") options.source = "'" + file.path() + "'";
  load_state_dict(module, tensors, options);
}

}  // namespace moh
