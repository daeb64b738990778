// Results table appends (vit/results_file.h), after timm validate.py write_results.
#include "vit/results_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/io/atomic_file.h"
#include "common/io/csv.h"
#include "common/error.h"

namespace moh::vit {
namespace fs = std::filesystem;
namespace {

std::string lower_ext(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  return e;
}

std::string cell(const nlohmann::ordered_json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return csv_field(v.get<std::string>());
  return csv_field(v.dump());
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void append_results_row(const std::string& path, const nlohmann::ordered_json& row) {
  const std::string ext = lower_ext(path);
  MOH_CHECK(ext == ".csv" || ext == ".json", "results file '", path, "' must end in .csv or .json");
  std::error_code ec;
  const std::string old = fs::exists(path, ec) ? slurp(path) : "";
  if (ext == ".json") {
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    if (old.find_first_not_of(" \t\r\n") != std::string::npos) {
      try {
        rows = nlohmann::ordered_json::parse(old);
      } catch (const std::exception& e) {
        throw Error("results file '" + path + "' is not valid JSON (" + e.what() + "); give a new file");
      }
      MOH_CHECK(rows.is_array(), "results file '", path, "' is not a JSON list of rows; give a new file");
    }
    rows.push_back(row);
    write_file_atomic(path, rows.dump(2) + "\n");
    return;
  }
  std::string header, line;
  for (auto it = row.begin(); it != row.end(); ++it) {
    header += (it == row.begin() ? "" : ",") + csv_field(it.key());
    line += (it == row.begin() ? "" : ",") + cell(it.value());
  }
  std::string text = old;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    text = header + "\n";
  } else {
    const std::string first = text.substr(0, text.find('\n'));
    MOH_CHECK(first == header, "results file '", path, "' has other columns (", first, "); expected (", header,
              "); give a new file");
    if (text.back() != '\n') text += "\n";
  }
  write_file_atomic(path, text + line + "\n");
}

}  // namespace moh::vit
