// WebDataset shard listing (vit/webdataset.h); the grouping rule of webdataset/tariterators.py (base_plus_ext,
// group_by_keys), the ".cls" / ".json" label conventions of timm's and Hugging Face's ImageNet shards.
#include "vit/webdataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "vit/tar_stream.h"

namespace moh::vit {
namespace fs = std::filesystem;
namespace {

bool ends_with_tar(const std::string& s) {
  return s.size() >= 4 && s.compare(s.size() - 4, 4, ".tar") == 0;
}

// Expands the first "{A..B}" (A, B decimal; width of A kept) and recurses; other text is kept as is.
std::vector<std::string> expand_braces(const std::string& s) {
  const auto open = s.find('{');
  if (open == std::string::npos) return {s};
  const auto close = s.find('}', open);
  const auto dots = s.find("..", open);
  MOH_CHECK(close != std::string::npos && dots != std::string::npos && dots < close, "shard pattern '", s,
            "': expected a range like {000000..000063}");
  const std::string a = s.substr(open + 1, dots - open - 1), b = s.substr(dots + 2, close - dots - 2);
  auto digits = [](const std::string& t) {
    return !t.empty() && t.size() <= 9 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  MOH_CHECK(digits(a) && digits(b) && std::stol(a) <= std::stol(b), "shard pattern '", s,
            "': expected a range like {000000..000063}");
  std::vector<std::string> out;
  for (long v = std::stol(a); v <= std::stol(b); ++v) {
    std::string n = std::to_string(v);
    if (n.size() < a.size()) n = std::string(a.size() - n.size(), '0') + n;
    for (auto& rest : expand_braces(s.substr(close + 1))) out.push_back(s.substr(0, open) + n + rest);
  }
  return out;
}

bool is_image_ext(const std::string& e) { return e == "jpg" || e == "jpeg" || e == "png" || e == "webp"; }

// One sample being assembled from consecutive members.
struct Pending {
  std::string key;
  int64_t key_offset = -1;  // header offset of its first member (for messages)
  bool has_image = false, has_label = false;
  EvalSample sample;
};

}  // namespace

std::vector<std::string> webdataset_shards(const std::string& spec) {
  std::error_code ec;
  std::vector<std::string> out;
  if (spec.find('{') != std::string::npos) {
    out = expand_braces(spec);
    for (const auto& f : out) MOH_CHECK(fs::is_regular_file(f, ec), "shard '", f, "' (from '", spec, "') does not exist");
  } else if (fs::is_directory(spec, ec)) {
    for (fs::directory_iterator it(spec, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ec2;
      if (it->is_regular_file(ec2) && ends_with_tar(it->path().filename().string())) out.push_back(it->path().string());
    }
    std::sort(out.begin(), out.end());
    MOH_CHECK(!out.empty(), "folder '", spec, "' holds no .tar shards");
  } else {
    MOH_CHECK(fs::is_regular_file(spec, ec), "shard '", spec, "' does not exist");
    out.push_back(spec);
  }
  return out;
}

bool looks_like_webdataset(const std::string& spec) {
  std::error_code ec;
  if (spec.find('{') != std::string::npos) return ends_with_tar(spec);
  if (fs::is_regular_file(spec, ec)) return ends_with_tar(spec);
  if (!fs::is_directory(spec, ec)) return false;
  bool tar = false;
  for (fs::directory_iterator it(spec, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) return false;
    tar = tar || ends_with_tar(it->path().filename().string());
  }
  return tar;
}

EvalDataset list_webdataset(const std::string& spec, const ClassResolver& resolve) {
  EvalDataset ds;
  ds.root = spec;
  ds.layout = "webdataset";
  const auto shards = webdataset_shards(spec);
  ds.num_shards = (int64_t)shards.size();
  for (size_t s = 0; s < shards.size(); ++s) {
    TarReader tar(shards[s]);
    Pending cur;
    auto at = [&](int64_t off) { return "tar shard '" + shards[s] + "' (member at byte " + std::to_string(off) + ")"; };
    auto flush = [&](bool cut) {
      if (cur.key.empty()) return;
      if (cut && (!cur.has_image || !cur.has_label || !cur.sample.error.empty())) {
        // The archive ends inside this sample: report it unreadable instead of failing the whole run.
        if (cur.sample.error.empty())
          cur.sample.error = "truncated tar shard '" + shards[s] + "': " + tar.truncation() + "; sample '" + cur.key +
                             "' is incomplete";
        if (cur.sample.path.empty()) cur.sample.path = shards[s] + "/" + cur.key;
        ds.samples.push_back(cur.sample);
        cur = Pending{};
        return;
      }
      MOH_CHECK(cur.has_image, at(cur.key_offset), ": sample '", cur.key,
                "' has no image member (.jpg, .jpeg, .png or .webp)");
      MOH_CHECK(cur.has_label, at(cur.key_offset), ": sample '", cur.key,
                "' has no label member (.cls with the class index, or .json with a \"label\" field)");
      ds.samples.push_back(cur.sample);
      cur = Pending{};
    };
    TarMember m;
    while (tar.next(m)) {
      if (m.type != '0') continue;  // directories, links
      // Key and extension as base_plus_ext: the extension starts at the first '.' of the file name.
      const auto slash = m.name.rfind('/');
      const auto dot = m.name.find('.', slash == std::string::npos ? 0 : slash + 1);
      if (dot == std::string::npos || dot == (slash == std::string::npos ? 0 : slash + 1)) continue;  // no ext / hidden
      const std::string key = m.name.substr(0, dot);
      std::string ext = m.name.substr(dot + 1);
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
      if (key != cur.key) {
        flush(false);
        cur.key = key;
        cur.key_offset = m.header_offset;
        cur.sample.shard = (int32_t)s;
      }
      if (is_image_ext(ext) && !cur.has_image) {
        cur.has_image = true;
        cur.sample.path = shards[s] + "/" + m.name;
        cur.sample.archive = shards[s];
        cur.sample.offset = m.data_offset;
        cur.sample.size = m.size;
        if (m.truncated())
          cur.sample.error = "truncated tar member '" + m.name + "' in '" + shards[s] + "' (header at byte " +
                             std::to_string(m.header_offset) + "): " + std::to_string(m.available) + " of " +
                             std::to_string(m.size) + " bytes present";
      } else if ((ext == "cls" || (ext == "json" && !cur.has_label)) && !m.truncated()) {
        const std::string text = tar.read_data(m, 1 << 20);
        std::string label;
        if (ext == "cls") {
          label = text;
          label.erase(0, label.find_first_not_of(" \t\r\n"));
          label.erase(label.find_last_not_of(" \t\r\n") + 1);
        } else {
          nlohmann::json j;
          try {
            j = nlohmann::json::parse(text);
          } catch (const std::exception& e) {
            throw Error(at(m.header_offset) + ": member '" + m.name + "' is not valid JSON (" + e.what() + ")");
          }
          const char* field = j.contains("label") ? "label" : (j.contains("cls") ? "cls" : nullptr);
          MOH_CHECK(field, at(m.header_offset), ": member '", m.name, "' has no \"label\" field");
          label = j[field].is_string() ? j[field].get<std::string>() : j[field].dump();
        }
        const int64_t idx = resolve(label);
        MOH_CHECK(idx >= 0, at(m.header_offset), ": member '", m.name, "' labels sample '", key, "' with '", label,
                  "', which is not a class of this model");
        cur.sample.label = idx;
        cur.has_label = true;
      }
    }
    const bool cut = !tar.truncation().empty();
    const size_t before = ds.samples.size();
    flush(cut);
    if (cut && (ds.samples.size() == before || ds.samples.back().error.empty())) {
      // The cut fell between samples (inside a header): what followed is lost; say so as one unreadable entry.
      EvalSample lost;
      lost.path = shards[s] + "/(after the last whole sample)";
      lost.shard = (int32_t)s;
      lost.error = "truncated tar shard '" + shards[s] + "': " + tar.truncation();
      ds.samples.push_back(lost);
    }
  }
  MOH_CHECK(!ds.samples.empty(), "WebDataset shards '", spec, "' hold no samples");
  ds.mapping = "labels of the shards' .cls/.json members (" + std::to_string(shards.size()) + " shards)";
  return ds;
}

}  // namespace moh::vit
