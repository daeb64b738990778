// JSON file reading and preset-name matching (common/io/json_file.h).
#include "common/io/json_file.h"

#include <cctype>
#include <fstream>

#include "common/error.h"

namespace moh {

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  MOH_CHECK(in.good(), "cannot open ", what, " '", path, "': check the path");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw Error(what + " '" + path + "' is not valid JSON (" + e.what() + ")");
  }
}

nlohmann::json metadata_json(const std::map<std::string, std::string>& meta, const std::string& key,
                             const std::string& path) {
  const auto it = meta.find(key);
  MOH_CHECK(it != meta.end(), "'", path, "' has no metadata entry '", key, "'");
  try {
    return nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    throw Error("'" + path + "': metadata '" + key + "' is not valid JSON (" + e.what() + ")");
  }
}

bool is_json_file_spec(const std::string& spec) {
  if (spec.size() > 5) {
    std::string ext = spec.substr(spec.size() - 5);
    for (auto& ch : ext) ch = (char)std::tolower((unsigned char)ch);
    if (ext == ".json") return true;
  }
  return std::ifstream(spec).good();
}

std::string preset_key(const std::string& name, const std::string& drop_prefix) {
  std::string k;
  for (char ch : name) k += (ch == '/' || ch == '_') ? '-' : static_cast<char>(std::tolower((unsigned char)ch));
  if (!drop_prefix.empty() && k.rfind(drop_prefix, 0) == 0) k = k.substr(drop_prefix.size());
  return k;
}

}  // namespace moh
