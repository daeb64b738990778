#include "tests/test_support.h"

#include <arpa/inet.h>
#include <glob.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <random>
#include <sstream>

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

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string repo_root() { return std::filesystem::path(MOH_TEST_DATA).parent_path().parent_path().string(); }
std::string repo_path(const std::string& rel) { return repo_root() + "/" + rel; }

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;  // the kernel picks a free one
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("free_port: no loopback port could be bound");
  return ntohs(a.sin_port);
}

bool torchrun_available() {
  static const int rc = run_command(repo_path("scripts/torchrun.sh") + " --check > /dev/null 2>&1");
  return rc == 0;
}

std::string torchrun_prefix(int nproc) {
  return repo_path("scripts/torchrun.sh") + " --nproc_per_node " + std::to_string(nproc) +
         " --master_addr 127.0.0.1 --master_port " + std::to_string(free_port()) + " --monitor_interval 0.2 --no_python ";
}

}  // namespace moh::test
