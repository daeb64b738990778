// [apps] scripts/bench-official.py (times the official MoH code; see its docstring) run on a stand-in of the official
// layout (tests/data/bench_standin, tiny modules of our own), and `moh-bench --against` reading what it wrote.
// Needs a python3 with torch: missing, the test fails under CI=true and is a visible SKIPPED warning elsewhere.
#include <cstdlib>
#include <string>

#include "tests/catch_compat.h"
#include "tests/test_support.h"

namespace {

// The first of python3 on PATH and Debian's /usr/bin/python3 that imports torch ("" when none does).
std::string python_with_torch() {
  for (const char* py : {"python3", "/usr/bin/python3"})
    if (moh::test::run_command(std::string(py) + " -c 'import torch' >/dev/null 2>&1") == 0) return py;
  return "";
}

using moh::test::repo_root;

}  // namespace

TEST_CASE("bench-official.py times the stand-in and moh-bench --against prints the ratio", "[apps]") {
  const std::string py = python_with_torch();
  if (!MOH_NEED(!py.empty(), "a python3 with PyTorch for scripts/bench-official.py (Debian: apt-get install "
                             "python3-torch)"))
    return;
  const auto dir = moh::test::temp_dir("bench_official");
  const std::string json = dir + "/official.json";
  std::string out;
  const std::string cmd = py + " " + repo_root() + "/scripts/bench-official.py --src " +
                          moh::test::data_path("bench_standin") + " --vit s80 --dit MoH-DiT-S/2-90 --warmup 0 " +
                          "--iters 2 --threads 1 --out " + json + " 2>&1";
  INFO(cmd);
  const int rc = moh::test::run_command(cmd, &out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto j = moh::test::read_json(json);
  CHECK(j.at("device") == "cpu");
  CHECK(j.at("dtype") == "fp32");
  CHECK(j.at("threads") == 1);
  REQUIRE(j.at("vit").size() == 1);
  CHECK(j["vit"][0].at("name") == "s80");
  CHECK(j["vit"][0].at("batch") == 4);
  CHECK(j["vit"][0].at("images_per_second").get<double>() > 0);
  REQUIRE(j.at("dit").size() == 1);
  CHECK(j["dit"][0].at("model") == "MoH-DiT-S/2-90");
  CHECK(j["dit"][0].at("batch") == 2);
  CHECK(j["dit"][0].at("median_ms").get<double>() > 0);

  // Ours against that file: same case, same thread count; prints both figures and the ratio.
  const std::string ours = dir + "/ours.json";
  const std::string bench = "OMP_NUM_THREADS=1 MOH_BENCH_DIT_IMAGES=1 " + moh::test::bin_path("moh-bench") +
                            " dit --device cpu --warmup 0 --iters 1 --only forward MoH-DiT-S/2-90 --against " + json +
                            " --json " + ours + " 2>&1";
  INFO(bench);
  std::string bench_out;
  REQUIRE(moh::test::run_command(bench, &bench_out) == 0);
  INFO(bench_out);
  CHECK(bench_out.find("ours/official x") != std::string::npos);
  const auto o = moh::test::read_json(ours);
  CHECK(o.at("dit")[0].at("official_ms").get<double>() == j["dit"][0]["median_ms"].get<double>());

  // A file measured with another thread count is refused (a ratio of different workloads means nothing).
  const std::string two = "OMP_NUM_THREADS=2 " + moh::test::bin_path("moh-bench") +
                          " dit --device cpu --warmup 0 --iters 1 --only forward MoH-DiT-S/2-90 --against " + json +
                          " 2>&1";
  std::string two_out;
  CHECK(moh::test::run_command(two, &two_out) != 0);
  CHECK(two_out.find("threads") != std::string::npos);
}

TEST_CASE("moh-bench --input-seed fixes the forward input; mixed reports max and rms error against fp32", "[apps]") {
  const auto dir = moh::test::temp_dir("bench_input_seed");
  auto run = [&](int seed, const std::string& name) {
    const std::string json = dir + "/" + name + ".json";
    const std::string cmd = "OMP_NUM_THREADS=1 MOH_BENCH_DIT_IMAGES=1 " + moh::test::bin_path("moh-bench") +
                            " dit --device cpu --dtype mixed --warmup 0 --iters 1 --only forward MoH-DiT-S/2-90 "
                            "--input-seed " + std::to_string(seed) + " --json " + json + " 2>&1";
    INFO(cmd);
    std::string out;
    REQUIRE(moh::test::run_command(cmd, &out) == 0);
    INFO(out);
    CHECK(out.find("rms(out - fp32)") != std::string::npos);
    return moh::test::read_json(json).at("dit").at(0);
  };
  const auto a = run(0, "a"), b = run(0, "b"), c = run(1, "c");
  const double rms = a.at("rel_rms_vs_fp32").get<double>();
  CHECK(rms > 1e-4);  // bf16 GEMMs: well above fp32 noise
  CHECK(rms < 5e-2);
  // One thread, same weights and input: the same error to the last bit; another seed, another input.
  CHECK(b.at("rel_rms_vs_fp32").get<double>() == rms);
  CHECK(b.at("rel_err_vs_fp32").get<double>() == a.at("rel_err_vs_fp32").get<double>());
  CHECK(c.at("rel_rms_vs_fp32").get<double>() != rms);
}
