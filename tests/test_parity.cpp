// moh-parity as a user runs it: every reference file in tests/data/golden passes; an unknown family is reported as
// unsupported (exit 2); an unreadable file is an error (exit 1).
#include <fstream>

#include "common/weights/safetensors.h"
#include "tests/catch_compat.h"
#include "tests/test_support.h"

using moh::test::bin_path;
using moh::test::data_glob;
using moh::test::run_command;
using moh::test::temp_dir;

TEST_CASE("moh-parity passes on every shipped reference file", "[parity]") {
  const auto files = data_glob("golden/*.safetensors");
  REQUIRE(files.size() >= 10);
  std::string cmd = bin_path("moh-parity") + " -q";
  for (const auto& f : files) cmd += " '" + f + "'";
  std::string out;
  const int rc = run_command(cmd, &out);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("summary: " + std::to_string(files.size()) + " passed, 0 failed, 0 errors, 0 unsupported") !=
        std::string::npos);
}

TEST_CASE("moh-parity reports unknown families as unsupported and unreadable files as errors", "[parity]") {
  const std::string dir = temp_dir("parity");
  const std::string unknown = dir + "/unknown.safetensors";
  moh::write_safetensors(unknown, {{"out.y", torch::zeros({2})}},
                         {{"format", "moh-golden-v1"}, {"family", "no_such_family"}, {"config", "{}"}});
  std::string out;
  CHECK(run_command(bin_path("moh-parity") + " " + unknown, &out) == 2);
  CHECK(out.find("UNSUPPORTED") != std::string::npos);

  const std::string broken = dir + "/broken.safetensors";
  std::ofstream(broken) << "not a safetensors file";
  CHECK(run_command(bin_path("moh-parity") + " " + broken + " " + unknown, &out) == 1);
  CHECK(out.find("broken.safetensors") != std::string::npos);

  // A valid file with the wrong format tag is rejected with a clear message.
  const std::string plain = dir + "/plain.safetensors";
  moh::write_safetensors(plain, {{"w", torch::ones({3})}});
  CHECK(run_command(bin_path("moh-parity") + " " + plain, &out) == 1);
  CHECK(out.find("moh-golden-v1") != std::string::npos);
}
