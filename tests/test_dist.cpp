// [dist] Multi-process runs (common/dist/distributed.h, vit/evaluate_dist.h, dit/fid_sampling.h): the launcher
// environment parser, then the apps as users run them: two ranks over Gloo on loopback, launched with
// scripts/torchrun.sh --no_python (torchrun's agent store) or by hand with Slurm's variables (rank 0 serves the
// store), must give exactly the one-process results (byte for byte for images); an FID run resumes; a rank that
// fails, or never comes, ends the others with an error within --dist-timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "common/dist/distributed.h"
#include "parity/golden.h"
#include "common/datasets/idx.h"
#include "common/image/image_io.h"
#include "common/dist/launch_env.h"
#include "common/weights/safetensors.h"
#include "dit/generate.h"
#include "dit/vae.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"
#include "vit/config.h"
#include "vit/fmnist_input.h"

namespace fs = std::filesystem;

namespace {

using moh::test::free_port;
using moh::test::repo_root;
using moh::test::torchrun_available;
std::string slurp(const std::string& path) { return moh::test::read_file(path); }

// `app args` as two ranks under torchrun (its agent hosts the store).
std::string torchrun2(const std::string& app_and_args) { return moh::test::torchrun_prefix(2) + app_and_args; }

// Two ranks started by hand with Slurm's variables (rank 0 serves the store); prints "rc0=A rc1=B" last.
std::string slurm2(const std::string& cmd0, const std::string& cmd1) {
  const std::string env = "SLURM_NTASKS=2 SLURM_STEP_NUM_TASKS=2 SLURM_LOCALID=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                          std::to_string(free_port()) + " ";
  return "bash -c '" + env + "SLURM_PROCID=1 " + cmd1 + " & p=$!; " + env + "SLURM_PROCID=0 " + cmd0 +
         "; r0=$?; wait $p; r1=$?; echo rc0=$r0 rc1=$r1'";
}

std::map<std::string, std::string> env_of(std::initializer_list<std::pair<const std::string, std::string>> kv) {
  return std::map<std::string, std::string>(kv);
}

moh::dist::EnvLookup lookup(const std::map<std::string, std::string>& env) {
  return [env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

// The tiny golden MoH-ViT as a self-contained model (config file + weights), RGB and 28x28-gray variants.
struct VitFixture {
  std::string dir, model_json, idx_model_json, weights;
};

VitFixture vit_fixture() {
  VitFixture f;
  f.dir = moh::test::temp_dir("dist-eval");
  moh::GoldenFile g(moh::test::data_glob("golden/vit_model*.safetensors").front());
  auto cfg = moh::vit::vit_config_from_json(g.config().at("model"));
  for (int64_t i = 0; i < cfg.num_classes; ++i) cfg.class_names.push_back("cls" + std::to_string(i));
  const auto w = g.weights();
  f.weights = f.dir + "/tiny.safetensors";
  moh::write_safetensors(f.weights, std::vector<std::pair<std::string, torch::Tensor>>(w.begin(), w.end()));
  f.model_json = f.dir + "/tiny.json";
  moh::vit::save_vit_config(cfg, f.model_json);
  moh::vit::FmnistPreprocess pre;
  pre.pad = 2;
  pre.upsample = cfg.img_size / 32;  // (28 + 2 * 2) * upsample = img_size
  nlohmann::json tj = {{"kind", "vit"}, {"model", moh::test::read_json(f.model_json)}, {"preprocess", pre.to_json()}};
  f.idx_model_json = f.dir + "/tiny-idx.json";
  std::ofstream(f.idx_model_json) << tj.dump();
  return f;
}

// Keys of moh-eval's JSON that must not depend on the number of processes.
void check_same_eval_json(const nlohmann::json& a, const nlohmann::json& b) {
  for (const char* k : {"images", "unreadable", "top1", "top5", "top1_correct", "top5_correct", "per_class",
                        "unreadable_files", "data", "layout", "class_mapping"}) {
    INFO(k);
    CHECK(a.at(k) == b.at(k));
  }
}

}  // namespace

TEST_CASE("Launcher environment: torchrun, Slurm, none, and bad values", "[dist]") {
  using moh::dist::detect_launch;
  auto none = detect_launch(lookup({}));
  CHECK(none.launcher == "none");
  CHECK(none.world_size == 1);
  CHECK(none.rank == 0);

  auto tr = detect_launch(lookup(env_of({{"RANK", "3"},
                                         {"WORLD_SIZE", "4"},
                                         {"LOCAL_RANK", "1"},
                                         {"LOCAL_WORLD_SIZE", "2"},
                                         {"MASTER_ADDR", "node7"},
                                         {"MASTER_PORT", "1234"},
                                         {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                         {"TORCHELASTIC_RESTART_COUNT", "2"}})));
  CHECK(tr.launcher == "torchrun");
  CHECK(tr.rank == 3);
  CHECK(tr.world_size == 4);
  CHECK(tr.local_rank == 1);
  CHECK(tr.local_world_size == 2);
  CHECK(tr.master_addr == "node7");
  CHECK(tr.master_port == 1234);
  CHECK(tr.agent_store);
  CHECK(tr.restart_count == 2);

  // Slurm: the step's task count wins over the allocation's; the master defaults to the first node of the job.
  auto sl = detect_launch(lookup(env_of({{"SLURM_PROCID", "5"},
                                         {"SLURM_NTASKS", "16"},
                                         {"SLURM_STEP_NUM_TASKS", "8"},
                                         {"SLURM_LOCALID", "1"},
                                         {"SLURM_JOB_NODELIST", "gpu[07-08,11],cpu1"},
                                         {"SLURM_JOB_ID", "123"}})));
  CHECK(sl.launcher == "slurm");
  CHECK(sl.rank == 5);
  CHECK(sl.world_size == 8);
  CHECK(sl.local_rank == 1);
  CHECK(sl.master_addr == "gpu07");
  CHECK(sl.master_port == 29500 + 123);
  CHECK_FALSE(sl.agent_store);
  moh::dist::LaunchOverrides ov;
  ov.master_addr = "10.0.0.1";
  ov.master_port = 4444;
  auto so = detect_launch(lookup(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}})), ov);
  CHECK(so.master_addr == "10.0.0.1");
  CHECK(so.master_port == 4444);
  CHECK(moh::dist::first_slurm_host("a") == "a");
  CHECK(moh::dist::first_slurm_host("n[1-3]") == "n1");

  auto by_hand = detect_launch(lookup(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}})));
  CHECK(by_hand.launcher == "env");
  CHECK(by_hand.master_port == 29500);
  CHECK_FALSE(by_hand.agent_store);
  CHECK_THROWS_AS(detect_launch(lookup(env_of({{"RANK", "0"}}))), moh::Error);
  CHECK_THROWS_AS(detect_launch(lookup(env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}))),
                  moh::Error);
  CHECK_THROWS_AS(detect_launch(lookup(env_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}))), moh::Error);
  CHECK_THROWS_AS(detect_launch(lookup(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}}))), moh::Error);  // no master

  // Shards: every index exactly once.
  std::vector<int> seen(11, 0);
  for (int r = 0; r < 3; ++r)
    for (auto i : moh::dist::strided_shard(11, r, 3)) seen[size_t(i)]++;
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));

  // The launcher-less path: a plain single-process group whose collectives are local.
  auto g = moh::dist::Group::single();
  CHECK_FALSE(g->multi());
  auto t = torch::tensor({1, 2}, torch::kInt64);
  g->all_reduce_sum(t, "test");
  CHECK(t[1].item<int64_t>() == 2);
  g->barrier("test");
  CHECK(g->gather_to_main("x", "t") == std::vector<std::string>{"x"});
  CHECK(g->counter_add("c", 2) == 2);
  g->wait_counter("c", 2, "test");
}

TEST_CASE("moh-eval: two ranks (torchrun; Slurm variables, IDX data) give the one-process results", "[dist]") {
  if (!MOH_NEED(moh::dist::multi_process_supported(), "a build with Gloo (libgloo-dev)")) return;
  if (!MOH_NEED(torchrun_available(), "torchrun (python3-torch; scripts/torchrun.sh --check)")) return;
  auto f = vit_fixture();
  const auto app = moh::test::bin_path("moh-eval");
  // ImageFolder: 7 random pictures spread over 3 classes, plus one unreadable file.
  const auto root = f.dir + "/data";
  std::mt19937 rng(11);
  for (int i = 0; i < 7; ++i) {
    moh::ImageU8 img;
    img.width = 40 + 7 * i;
    img.height = 70 - 4 * i;
    img.rgb.resize(size_t(img.width) * img.height * 3);
    for (auto& p : img.rgb) p = uint8_t(rng() & 255);
    const auto cls = root + "/cls" + std::to_string(i % 3);
    fs::create_directories(cls);
    moh::encode_png(cls + "/im" + std::to_string(i) + ".png", img);
  }
  std::ofstream(root + "/cls1/bad.png") << "broken";
  const std::string common = app + " --model " + f.model_json + " --weights " + f.weights + " --data " + root +
                             " --device cpu --threads 1 --batch-size 2 --workers 1 -q --dist-timeout 60 ";
  std::string out1, out2;
  CHECK(moh::test::run_command(common + "--json " + f.dir + "/one.json --csv " + f.dir + "/one.csv 2>&1", &out1) == 3);
  const int rc = moh::test::run_command(
      torchrun2(common + "--json " + f.dir + "/two.json --csv " + f.dir + "/two.csv") + " 2>&1", &out2);
  INFO(out1 << "\n---- torchrun:\n" << out2);
  CHECK(rc != 0);  // rank 0 exits 3 (an unreadable image); torchrun reports the failure
  CHECK(out2.find("2 ranks (torchrun, gloo)") != std::string::npos);
  REQUIRE(fs::exists(f.dir + "/two.json"));
  const auto one = moh::test::read_json(f.dir + "/one.json"), two = moh::test::read_json(f.dir + "/two.json");
  check_same_eval_json(one, two);
  CHECK(one.at("images") == 7);
  CHECK(two.at("ranks") == 2);
  CHECK((slurp(f.dir + "/one.csv") == slurp(f.dir + "/two.csv")));

  // IDX data (in-memory pictures, sharded by index), two ranks started by hand with Slurm's variables.
  const auto idx = f.dir + "/idx";
  fs::create_directories(idx);
  const int64_t n = 9;
  auto images = torch::randint(0, 256, {n, 28, 28}, torch::kInt64).to(torch::kUInt8);
  auto labels = torch::arange(n, torch::kInt64).remainder(10).to(torch::kUInt8);
  moh::write_idx(idx + "/t10k-images-idx3-ubyte", images, false);
  moh::write_idx(idx + "/t10k-labels-idx1-ubyte", labels, false);
  const std::string icommon = app + " --model " + f.idx_model_json + " --weights " + f.weights + " --data " + idx +
                              " --device cpu --threads 1 --batch-size 4 -q --dist-timeout 60 --json ";
  std::string out3, out4;
  CHECK(moh::test::run_command(icommon + f.dir + "/idx1.json 2>&1", &out3) == 0);
  moh::test::run_command(slurm2(icommon + f.dir + "/idx2.json", icommon + f.dir + "/idx2-rank1.json") + " 2>&1", &out4);
  INFO(out3 << "\n---- slurm-style:\n" << out4);
  CHECK(out4.find("rc0=0 rc1=0") != std::string::npos);
  CHECK(out4.find("2 ranks (slurm, gloo)") != std::string::npos);
  CHECK_FALSE(fs::exists(f.dir + "/idx2-rank1.json"));  // only rank 0 writes
  REQUIRE(fs::exists(f.dir + "/idx2.json"));
  check_same_eval_json(moh::test::read_json(f.dir + "/idx1.json"), moh::test::read_json(f.dir + "/idx2.json"));
  CHECK(moh::test::read_json(f.dir + "/idx2.json").at("images") == n);
}

namespace {

// The tiny golden DiT (config file, weights) and VAE as files for moh-generate.
struct DitFixture {
  std::string dir, model_json, weights, vae;
};

DitFixture dit_fixture() {
  DitFixture s;
  s.dir = moh::test::temp_dir("dist-generate");
  moh::GoldenFile gd(moh::test::data_glob("golden/dit_sampler.safetensors").front());
  s.model_json = s.dir + "/model.json";
  std::ofstream(s.model_json) << gd.config().at("model").dump();
  const auto w = gd.weights();
  s.weights = s.dir + "/dit.safetensors";
  moh::write_safetensors(s.weights, std::vector<std::pair<std::string, torch::Tensor>>(w.begin(), w.end()));
  moh::GoldenFile gv(moh::test::data_glob("golden/vae_decoder.safetensors").front());
  auto vc = gv.config().at("vae");
  vc["scaling_factor"] = gv.config().value("scaling_factor", 0.18215);
  moh::dit::Vae vae(moh::dit::VaeConfig::from_json(vc));
  moh::dit::load_vae_weights(vae, gv.weights(), gv.path());
  s.vae = s.dir + "/vae.safetensors";
  moh::dit::save_vae(vae, s.vae);
  return s;
}

std::vector<std::string> pngs_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("moh-generate FID mode: two ranks give the one-process images byte for byte, and resume", "[dist]") {
  if (!MOH_NEED(moh::dist::multi_process_supported(), "a build with Gloo (libgloo-dev)")) return;
  if (!MOH_NEED(torchrun_available(), "torchrun (python3-torch; scripts/torchrun.sh --check)")) return;
  auto s = dit_fixture();
  const auto app = moh::test::bin_path("moh-generate");
  const std::string common = app + " -q --model " + s.model_json + " --weights " + s.weights + " --vae " + s.vae +
                             " --num-samples 5 --class 2 --class 7 --class 9 --steps 3 --cfg-scale 4 --seed 5 "
                             "--device cpu --threads 1 --dist-timeout 60 ";
  // One thread per process in both runs: CPU kernels may round differently with another thread count (measured:
  // 1 vs 2 threads changed one pixel by one level). The number of processes does not matter by construction: images
  // are computed in fixed chunks of --batch-size global indices (here [0,4) and [4,5)), ranks take whole chunks, so
  // every image sees the same GEMM shapes (with per-rank batches, an AMD CPU's BLAS changed two pixels by a level).
  std::string out1, out2;
  REQUIRE(moh::test::run_command(common + "--batch-size 4 --out " + s.dir + "/one 2>&1", &out1) == 0);
  const int rc = moh::test::run_command(torchrun2(common + "--batch-size 4 --out " + s.dir + "/two") + " 2>&1", &out2);
  INFO(out1 << "\n---- torchrun:\n" << out2);
  REQUIRE(rc == 0);
  const auto names = pngs_in(s.dir + "/one");
  REQUIRE(names == std::vector<std::string>{"000000.png", "000001.png", "000002.png", "000003.png", "000004.png"});
  CHECK(pngs_in(s.dir + "/two") == names);
  for (const auto& n : names) {
    const auto a = moh::decode_image_file(s.dir + "/one/" + n), b = moh::decode_image_file(s.dir + "/two/" + n);
    int max_diff = 0;
    for (size_t k = 0; k < a.rgb.size() && k < b.rgb.size(); ++k)
      max_diff = std::max(max_diff, std::abs(int(a.rgb[k]) - int(b.rgb[k])));
    INFO(n << " max pixel difference " << max_diff);
    CHECK(a.rgb == b.rgb);                                              // the same pixels
    CHECK((slurp(s.dir + "/one/" + n) == slurp(s.dir + "/two/" + n)));  // and the same bytes
  }
  CHECK((slurp(s.dir + "/one/samples.npz") == slurp(s.dir + "/two/samples.npz")));
  const auto side = moh::decode_image_file(s.dir + "/one/000000.png").width;
  CHECK(slurp(s.dir + "/one/samples.npz")
            .find("'shape': (5, " + std::to_string(side) + ", " + std::to_string(side) + ", 3)") != std::string::npos);
  const auto j1 = moh::test::read_json(s.dir + "/one/generation.json");
  const auto j2 = moh::test::read_json(s.dir + "/two/generation.json");
  CHECK(j1.at("complete") == true);
  CHECK(j1.at("labels") == j2.at("labels"));
  CHECK(j1.at("run") == j2.at("run"));
  for (const auto& l : j1.at("labels")) CHECK((l == 2 || l == 7 || l == 9));
  CHECK(j2.at("this_run").at("ranks") == 2);
  CHECK(j1.at("chunk_size") == 4);
  CHECK(j2.at("chunk_size") == 4);
  CHECK(j1.at("this_run").at("chunks_computed") == 2);

  // Resume: two samples and the npz lost (an interrupted run); the rerun, with another --batch-size, keeps the
  // recorded chunks of 4, recomputes the two chunks that hold them and writes only those, identically.
  fs::copy(s.dir + "/one", s.dir + "/three");
  fs::remove(s.dir + "/three/000001.png");
  fs::remove(s.dir + "/three/000004.png");
  fs::remove(s.dir + "/three/samples.npz");
  std::ofstream(s.dir + "/three/000001.png.tmp.999") << "half-written";
  std::string out3;
  REQUIRE(moh::test::run_command(common + "--batch-size 3 --out " + s.dir + "/three 2>&1", &out3) == 0);
  INFO(out3);
  CHECK(out3.find("2 generated") != std::string::npos);
  CHECK(out3.find("3 already there") != std::string::npos);
  CHECK(out3.find("chunks of 4 images") != std::string::npos);
  CHECK(moh::test::read_json(s.dir + "/three/generation.json").at("this_run").at("chunks_computed") == 2);
  CHECK_FALSE(fs::exists(s.dir + "/three/000001.png.tmp.999"));
  for (const auto& n : names) CHECK((slurp(s.dir + "/one/" + n) == slurp(s.dir + "/three/" + n)));
  CHECK((slurp(s.dir + "/one/samples.npz") == slurp(s.dir + "/three/samples.npz")));

  // Another seed must not be mixed into that folder.
  std::string out4;
  CHECK(moh::test::run_command(app + " -q --model " + s.model_json + " --weights " + s.weights + " --vae " + s.vae +
                                   " --num-samples 5 --class 2 --class 7 --class 9 --steps 3 --cfg-scale 4 --seed 6 "
                                   "--device cpu --out " +
                                   s.dir + "/three 2>&1",
                               &out4) == 1);
  CHECK(out4.find("another run (different seed)") != std::string::npos);
}

TEST_CASE("A rank that fails, or never arrives, ends the others with an error within the timeout", "[dist]") {
  if (!MOH_NEED(moh::dist::multi_process_supported(), "a build with Gloo (libgloo-dev)")) return;
  auto s = dit_fixture();
  const auto app = moh::test::bin_path("moh-generate");
  const std::string args = " -q --model " + s.model_json + " --vae " + s.vae +
                           " --num-samples 6 --class 1 --steps 40 --cfg-scale 4 --device cpu ";
  // Rank 1 cannot read its weights and stops at once; rank 0 must not wait for it.
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  moh::test::run_command(
      slurm2(app + args + "--dist-timeout 20 --weights " + s.weights + " --out " + s.dir + "/a",
             app + args + "--dist-timeout 20 --weights " + s.dir + "/missing.safetensors --out " + s.dir + "/a") +
          " 2>&1",
      &out);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(out);
  CHECK(out.find("rc0=1 rc1=1") != std::string::npos);
  CHECK(out.find("rank 1 stopped with an error") != std::string::npos);
  CHECK(took < 20);
  CHECK_FALSE(fs::exists(s.dir + "/a/samples.npz"));

  // World size 2 but rank 1 never starts: the rendezvous times out with a clear message.
  const auto t1 = std::chrono::steady_clock::now();
  const int rc = moh::test::run_command(
      "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " " + app + args +
          "--weights " + s.weights + " --dist-timeout 2 --out " + s.dir + "/b 2>&1",
      &out);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  INFO(out);
  CHECK(rc == 1);
  CHECK(out.find("rendezvous") != std::string::npos);
  CHECK(waited < 15);
}
