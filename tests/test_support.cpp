#include "tests/test_support.h"

#include <glob.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <random>

namespace moh::test {

std::string data_path(const std::string& rel) { return std::string(MOH_TEST_DATA) + "/" + rel; }

std::vector<std::string> data_glob(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(data_path(pattern).c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    for (auto& d : dirs) std::filesystem::remove_all(d);
  }
};
TempDirs& temp_dirs() {
  static TempDirs t;
  return t;
}
}  // namespace

std::string temp_dir(const std::string& tag) {
  std::random_device rd;
  auto p = std::filesystem::temp_directory_path() / ("moh_test_" + tag + "_" + std::to_string(rd()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  temp_dirs().dirs.push_back(p.string());
  return p.string();
}

bool in_ci() {
  const char* v = std::getenv("CI");
  return v && std::string(v) == "true";
}

std::string bin_path(const std::string& app) { return std::string(MOH_BIN_DIR) + "/" + app; }

int run_command(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::string out;
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot read JSON file '" + path + "'");
  nlohmann::json j;
  in >> j;
  return j;
}

}  // namespace moh::test
