// Helpers shared by the Catch2 tests: fixture paths and temporary folders.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moh::test {
std::string data_path(const std::string& rel);                 // tests/data/<rel>
std::vector<std::string> data_glob(const std::string& pattern);  // sorted matches under tests/data
std::string temp_dir(const std::string& tag);                    // fresh empty folder, removed at exit
std::string bin_path(const std::string& app);                    // build/bin/<app>
// Runs a shell command, returns its exit code and (optionally) its combined output.
int run_command(const std::string& cmd, std::string* output = nullptr);
// Parses a JSON file; throws std::runtime_error naming the file when it cannot be read.
nlohmann::json read_json(const std::string& path);
}  // namespace moh::test
