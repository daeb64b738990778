// [generate] Generation pipeline (dit/generate.h) and the moh-generate app: end-to-end parity with the official
// sample.py chain (DiT sampler golden -> VAE golden), determinism, output files (PNGs, grid, npz, sidecar) and the
// error cases through the binary. Tiny models only: golden weights or random weights at 8x8 latents.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "parity/golden.h"
#include "common/image/image_io.h"
#include "common/weights/safetensors.h"
#include "dit/diffusion.h"
#include "dit/fid_sampling.h"
#include "dit/generate.h"
#include "dit/generation_output.h"
#include "dit/model.h"
#include "dit/vae.h"
#include "tests/catch_compat.h"
#include "tests/test_support.h"

using namespace moh;
using namespace moh::dit;
namespace fs = std::filesystem;

namespace {

std::string golden(const std::string& name) {
  const auto files = test::data_glob("golden/" + name);
  REQUIRE(files.size() == 1);
  return files[0];
}

nlohmann::json golden_model_json(const GoldenFile& g) { return g.config().at("model"); }

DiT golden_dit(const GoldenFile& g) {
  DiT model(DiTConfig::from_json(golden_model_json(g)));
  load_state_dict(*model, g.weights());
  model->eval();
  return model;
}

Vae golden_vae(const GoldenFile& g) {
  auto vc = g.config().at("vae");
  vc["scaling_factor"] = g.config().value("scaling_factor", 0.18215);
  Vae vae(VaeConfig::from_json(vc));
  load_vae_weights(vae, g.weights(), g.path());
  vae->eval();
  return vae;
}

using moh::test::read_file;

uint64_t le(const std::string& s, size_t off, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s.at(off + i));
  return v;
}

// Minimal independent reader of a stored one-member .npz (central directory, ZIP64 extra) -> (npy dict, data).
std::pair<std::string, std::string> read_npz_member(const std::string& path, const std::string& member) {
  const std::string z = read_file(path);
  const size_t eocd = z.rfind(std::string("PK\x05\x06", 4));
  REQUIRE(eocd != std::string::npos);
  uint64_t cd_off = le(z, eocd + 16, 4);
  if (cd_off == 0xFFFFFFFFu) {  // ZIP64: locator just before the EOCD points at the zip64 EOCD record
    const size_t loc = eocd - 20;
    REQUIRE(le(z, loc, 4) == 0x07064b50);
    const uint64_t rec = le(z, loc + 8, 8);
    REQUIRE(le(z, rec, 4) == 0x06064b50);
    cd_off = le(z, rec + 48, 8);
  }
  REQUIRE(le(z, cd_off, 4) == 0x02014b50);
  REQUIRE(le(z, cd_off + 10, 2) == 0);  // stored
  uint64_t size = le(z, cd_off + 24, 4);
  const size_t name_len = le(z, cd_off + 28, 2), extra_len = le(z, cd_off + 30, 2);
  REQUIRE(z.substr(cd_off + 46, name_len) == member);
  if (size == 0xFFFFFFFFu) {
    const size_t ex = cd_off + 46 + name_len;
    REQUIRE(extra_len >= 20);
    REQUIRE(le(z, ex, 2) == 1);
    size = le(z, ex + 4, 8);
  }
  const uint64_t local = le(z, cd_off + 42, 4);
  REQUIRE(le(z, local, 4) == 0x04034b50);
  const size_t data = local + 30 + le(z, local + 26, 2) + le(z, local + 28, 2);
  const std::string npy = z.substr(data, size);
  REQUIRE(npy.compare(0, 6, "\x93NUMPY") == 0);
  const size_t hlen = le(npy, 8, 2);
  REQUIRE((10 + hlen) % 16 == 0);
  return {npy.substr(10, hlen), npy.substr(10 + hlen)};
}

struct TinySetup {
  std::string dir, model_json, vae_file, dit_weights;
};

// Tiny model JSON (the golden DiT config, with optional overrides), the golden VAE as a safetensors file with its
// architecture in metadata, and the golden DiT weights as a safetensors file.
TinySetup tiny_setup(const nlohmann::json& overrides = nlohmann::json::object()) {
  TinySetup s;
  s.dir = test::temp_dir("generate");
  GoldenFile gd(golden("dit_sampler.safetensors"));
  auto mj = golden_model_json(gd);
  for (auto& [k, v] : overrides.items()) mj[k] = v;
  s.model_json = s.dir + "/model.json";
  std::ofstream(s.model_json) << mj.dump();
  Vae vae = golden_vae(GoldenFile(golden("vae_decoder.safetensors")));
  s.vae_file = s.dir + "/vae.safetensors";
  save_vae(vae, s.vae_file);
  const auto w = gd.weights();
  s.dit_weights = s.dir + "/dit.safetensors";
  write_safetensors(s.dit_weights, std::vector<std::pair<std::string, torch::Tensor>>(w.begin(), w.end()));
  return s;
}

int gen(const std::string& args, std::string* output) {
  return test::run_command(test::bin_path("moh-generate") + " -q " + args, output);
}

bool staging_left(const std::string& parent) {
  for (const auto& e : fs::directory_iterator(parent))
    if (e.path().filename().string().find(".partial-") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("generate_images reproduces the official sample.py chain (DiT sampler -> VAE decode)", "[generate]") {
  GoldenFile gs(golden("dit_sampler.safetensors"));
  GoldenFile gv(golden("vae_decoder.safetensors"));
  // The VAE golden's pipeline step decodes this sampler golden's DDIM samples (metadata says which).
  const auto pipe = nlohmann::json::parse(gv.file().meta("pipeline", "{}"));
  REQUIRE(pipe.value("from", "") == "dit_sampler.safetensors");
  const std::string run = pipe.value("run", "ddim");
  auto model = golden_dit(gs);
  auto vae = golden_vae(gv);
  const auto labels_t = gs.get("in.class_labels");

  GenerateParams p;
  for (int64_t i = 0; i < labels_t.numel(); ++i) p.labels.push_back(labels_t[i].item<int64_t>());
  p.sampler = run.rfind("ddim", 0) == 0 ? "ddim" : "ddpm";
  p.steps = std::stoll(gs.config().at("num_sampling_steps").get<std::string>());
  p.eta = gs.config().value("ddim_eta", 0.0);
  p.cfg_scale = gs.get("in.cfg_scale").item<double>();
  p.batch_size = static_cast<int64_t>(p.labels.size());
  p.initial_noise = gs.get("in.z");
  p.progress = false;

  auto check_against = [&](const torch::Tensor& expected, const Tolerance& tol) {
    int batches = 0;
    generate_images(model, &vae, p, torch::kCPU, [&](const GeneratedBatch& b) {
      ++batches;
      auto r = compare_tensors(b.images, expected, tol);
      INFO("max_abs " << r.max_abs << " max|ref| " << r.max_ref << " atol " << tol.atol);
      CHECK(r.pass);
      // Quantisation: the official formula on the reference image, within one level (rounding at boundaries).
      auto ref_u8 = (expected * 127.5 + 128.0).clamp(0, 255).permute({0, 2, 3, 1}).to(torch::kUInt8);
      auto d = (b.images_u8.to(torch::kInt32) - ref_u8.to(torch::kInt32)).abs().max().item<int>();
      CHECK(d <= 1);
      CHECK(b.labels == p.labels);
    });
    CHECK(batches == 1);
  };

  SECTION("DDIM (eta 0) decoded, as the VAE golden's pipeline sample") {
    const auto tol_j = nlohmann::json::parse(gv.file().meta("pipeline_tolerance", "{}"));
    Tolerance tol{tol_j.value("atol", 1e-4), tol_j.value("rtol", 1e-4)};
    check_against(gv.get("out.pipeline_sample"), tol);
  }
  SECTION("DDPM with the official noise draws replayed") {
    p.sampler = "ddpm";
    p.step_noise = replay_noise(gs.get("in.ddpm.noises"));
    torch::NoGradGuard ng;
    // Our decoder is checked against the VAE golden elsewhere; here it decodes the official DDPM samples.
    auto expected = vae->decode(gs.get("out.ddpm.samples"));
    const double rel = nlohmann::json::parse(gs.file().meta("recommended_tolerance", "{}")).value("atol_rel_to_max", 2e-5);
    check_against(expected, Tolerance{4 * rel * expected.abs().max().item<double>(), 1e-4});
  }
}

TEST_CASE("FID chunks: fixed blocks of global indices, recomputed whole when one image is missing", "[generate]") {
  using Chunks = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(moh::dit::fid_chunks_to_generate({0, 1, 2, 3, 4}, 5, 4) == Chunks{{0, 4}, {4, 5}});
  CHECK(moh::dit::fid_chunks_to_generate({1, 4}, 5, 4) == Chunks{{0, 4}, {4, 5}});
  CHECK(moh::dit::fid_chunks_to_generate({5, 6, 11}, 12, 3) == Chunks{{3, 6}, {6, 9}, {9, 12}});
  CHECK(moh::dit::fid_chunks_to_generate({7}, 8, 1) == Chunks{{7, 8}});
  CHECK(moh::dit::fid_chunks_to_generate({}, 8, 4).empty());
  CHECK_THROWS_AS(moh::dit::fid_chunks_to_generate({9}, 8, 4), moh::Error);
}

TEST_CASE("make_grid_u8 follows torchvision's make_grid layout", "[generate]") {
  auto imgs = torch::randint(1, 255, {5, 3, 4, 3}, torch::kInt32).to(torch::kUInt8);  // [N,H,W,C]
  auto grid = make_grid_u8(imgs, 2);
  // 5 images, 2 per row -> 3 rows; (H+2)*rows+2 x (W+2)*2+2.
  CHECK(grid.sizes() == torch::IntArrayRef({3 * 5 + 2, 2 * 6 + 2, 3}));
  CHECK(torch::equal(grid.slice(0, 2, 5).slice(1, 2, 6), imgs[0]));
  CHECK(torch::equal(grid.slice(0, 12, 15).slice(1, 2, 6), imgs[4]));
  CHECK(grid.slice(0, 12, 15).slice(1, 8, 12).sum().item<int64_t>() == 0);  // empty slot stays padding
  CHECK(grid.select(0, 0).sum().item<int64_t>() == 0);                      // padding row
}

TEST_CASE("write_npz_u8 writes what an npz reader sees (plain and ZIP64 layout)", "[generate]") {
  const auto dir = test::temp_dir("npz");
  auto a = torch::randint(0, 256, {3, 5, 7, 3}, torch::kInt32).to(torch::kUInt8);
  for (bool z64 : {false, true}) {
    const auto path = dir + (z64 ? "/z64.npz" : "/plain.npz");
    write_npz_u8(path, "arr_0", a, z64);
    auto [dict, data] = read_npz_member(path, "arr_0.npy");
    INFO(dict);
    CHECK(dict.find("'descr': '|u1'") != std::string::npos);
    CHECK(dict.find("'shape': (3, 5, 7, 3)") != std::string::npos);
    REQUIRE(data.size() == static_cast<size_t>(a.numel()));
    CHECK(std::memcmp(data.data(), a.data_ptr(), data.size()) == 0);
  }
}

TEST_CASE("moh-generate: deterministic files, sidecar, grid and npz", "[generate]") {
  auto s = tiny_setup({{"class_names", nlohmann::json::array({"c0", "c1", "c2", "Snow Leopard", "c4", "c5", "c6",
                                                              "c7", "c8", "c9"})}});
  const std::string common = "--model " + s.model_json + " --random-weights --vae " + s.vae_file +
                             " --class 3 --class c8 --num-per-class 2 --batch-size 3 --steps 3 --cfg-scale 4 "
                             "--device cpu --grid --grid-nrow 2 --npz ";
  std::string out;
  REQUIRE(gen(common + "--seed 7 --out " + s.dir + "/a", &out) == 0);
  INFO(out);
  REQUIRE(gen(common + "--seed 7 --out " + s.dir + "/b", &out) == 0);
  REQUIRE(gen(common + "--seed 8 --out " + s.dir + "/c", &out) == 0);

  const auto sidecar = nlohmann::json::parse(read_file(s.dir + "/a/generation.json"));
  std::vector<std::string> pngs;
  for (const auto& f : sidecar.at("files")) {
    const auto name = f.get<std::string>();
    CHECK(fs::exists(s.dir + "/a/" + name));
    if (name.rfind("0000", 0) == 0) pngs.push_back(name);
    if (name != "generation.json") {
      const bool same = read_file(s.dir + "/a/" + name) == read_file(s.dir + "/b/" + name);
      CHECK(same);  // same seed + settings -> identical bytes
    }
  }
  CHECK(read_file(s.dir + "/a/samples.npz") != read_file(s.dir + "/c/samples.npz"));  // other seed differs
  REQUIRE(pngs.size() == 4);
  CHECK(pngs[0] == "000000_3_snow_leopard.png");
  CHECK(pngs[3] == "000003_8_c8.png");
  CHECK(sidecar.at("seed") == 7);
  CHECK(sidecar.at("labels") == nlohmann::json::array({3, 3, 8, 8}));
  CHECK(sidecar.at("settings").at("steps") == 3);
  CHECK(sidecar.at("settings").at("sampler") == "ddpm");
  CHECK(sidecar.at("settings").at("cfg_scale") == 4.0);
  CHECK(sidecar.at("settings").at("batch_size") == 3);
  CHECK(sidecar.at("model_config").at("num_classes") == 10);
  CHECK(sidecar.at("vae") == s.vae_file);

  // The npz holds exactly the PNG pixels, in file order; image side = latent side x VAE upscale.
  GoldenFile gd(golden("dit_sampler.safetensors"));
  const int64_t latent = gd.config().at("model").at("input_size");
  const auto side = latent * VaeConfig::from_json(GoldenFile(golden("vae_decoder.safetensors")).config().at("vae")).downscale();
  CHECK(sidecar.at("image_size") == nlohmann::json::array({side, side}));
  auto [dict, data] = read_npz_member(s.dir + "/a/samples.npz", "arr_0.npy");
  CHECK(dict.find("(4, " + std::to_string(side) + ", " + std::to_string(side) + ", 3)") != std::string::npos);
  for (size_t i = 0; i < pngs.size(); ++i) {
    auto img = decode_image_file(s.dir + "/a/" + pngs[i]);
    REQUIRE(img.width == side);
    REQUIRE(img.rgb.size() * pngs.size() == data.size());
    CHECK(std::memcmp(img.rgb.data(), data.data() + i * img.rgb.size(), img.rgb.size()) == 0);
  }
  auto grid = decode_image_file(s.dir + "/a/grid.png");
  CHECK(grid.width == 2 * (side + 2) + 2);
  CHECK(grid.height == 2 * (side + 2) + 2);
}

TEST_CASE("moh-generate: ImageNet names, golden weights and a pixel-space model", "[generate]") {
  std::string out;
  SECTION("ImageNet-sized model resolves class names and suggests close matches") {
    auto s = tiny_setup({{"num_classes", 1000}});
    const std::string common = "--model " + s.model_json + " --random-weights --vae " + s.vae_file +
                               " --steps 2 --device cpu --cfg-scale 1 ";
    REQUIRE(gen(common + "--class 'golden retriever' --out " + s.dir + "/in", &out) == 0);
    CHECK(fs::exists(s.dir + "/in/000000_207_golden_retriever.png"));
    CHECK(gen(common + "--class 'golden retreiver' --out " + s.dir + "/bad", &out) == 1);
    CHECK(out.find("golden retriever") != std::string::npos);
    CHECK(!fs::exists(s.dir + "/bad"));
  }
  SECTION("golden weights load from --weights") {
    auto s = tiny_setup();
    REQUIRE(gen("--model " + s.model_json + " --weights " + s.dit_weights + " --vae " + s.vae_file +
                    " --class 1 --steps 2 --sampler ddim --device cpu --out " + s.dir + "/w",
                &out) == 0);
    CHECK(fs::exists(s.dir + "/w/000000_1.png"));
  }
  SECTION("pixel-space model (in_channels 3) needs no VAE; its output is the image") {
    auto s = tiny_setup({{"in_channels", 3}});
    REQUIRE(gen("--model " + s.model_json + " --random-weights --class 2 --steps 2 --device cpu --out " + s.dir + "/px",
                &out) == 0);
    INFO(out);
    auto img = decode_image_file(s.dir + "/px/000000_2.png");
    GoldenFile gd(golden("dit_sampler.safetensors"));
    CHECK(img.width == gd.config().at("model").at("input_size").get<int>());
  }
}

TEST_CASE("moh-generate: clear errors and nothing half-written", "[generate]") {
  auto s = tiny_setup();
  const std::string base = "--model " + s.model_json + " --vae " + s.vae_file + " --steps 2 --device cpu ";
  std::string out;
  auto fails = [&](const std::string& args, const std::string& expect, const std::string& out_dir) {
    INFO(args);
    const int rc = gen(args + " --out " + out_dir, &out);
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find(expect) != std::string::npos);
    CHECK(!fs::exists(out_dir));
    CHECK(!staging_left(s.dir));
  };
  fails(base + "--weights " + s.dir + "/missing.safetensors --class 1", "missing.safetensors", s.dir + "/e1");
  fails(base + "--class 1", "--weights is required", s.dir + "/e2");
  // A VAE file whose keys do not match (the DiT weights): the error names the file and the VAE.
  fails("--model " + s.model_json + " --random-weights --vae " + s.dit_weights + " --class 1 --device cpu",
        "VAE", s.dir + "/e3");
  fails(base + "--random-weights --class 10", "out of range", s.dir + "/e4");
  fails(base + "--random-weights --class zebra", "zebra", s.dir + "/e5");
  // DiT weights of another architecture: strict loading lists the problem.
  {
    auto other = tiny_setup({{"hidden_size", 96}});
    fails("--model " + other.model_json + " --weights " + s.dit_weights + " --vae " + s.vae_file +
              " --class 1 --steps 2 --device cpu",
          "do not match", s.dir + "/e6");
  }
  // Unwritable output: a folder below a regular file.
  std::ofstream(s.dir + "/plainfile") << "x";
  CHECK(gen(base + "--random-weights --class 1 --out " + s.dir + "/plainfile/sub", &out) == 1);
  CHECK(out.find("--out") != std::string::npos);
  // An existing non-empty folder is not touched without --overwrite.
  fs::create_directories(s.dir + "/full");
  std::ofstream(s.dir + "/full/keep.txt") << "x";
  CHECK(gen(base + "--random-weights --class 1 --out " + s.dir + "/full", &out) == 1);
  CHECK(out.find("--overwrite") != std::string::npos);
  REQUIRE(gen(base + "--random-weights --class 1 --overwrite --out " + s.dir + "/full", &out) == 0);
  CHECK(fs::exists(s.dir + "/full/keep.txt"));
  CHECK(fs::exists(s.dir + "/full/000000_1.png"));
  CHECK(!staging_left(s.dir));
}

TEST_CASE("moh-generate: SIGTERM or Ctrl-C mid-run leaves no staging folder and no output", "[generate]") {
  auto s = tiny_setup();
  for (const char* sig : {"TERM", "INT"}) {
    INFO(sig);
    const std::string out_dir = s.dir + "/int_" + sig;
    // Start a long run, wait until its staging folder exists (sampling has begun), then send the signal.
    const std::string cmd = "sh -c '" + test::bin_path("moh-generate") + " -q --model " + s.model_json +
                            " --random-weights --vae " + s.vae_file + " --class 1 --num-per-class 64 --steps 1000" +
                            " --device cpu --threads 1 --out " + out_dir + " & pid=$!; " +
                            "for i in $(seq 1 400); do ls -d " + s.dir + "/.int_" + sig +
                            ".partial-* >/dev/null 2>&1 && break; sleep 0.05; done; sleep 0.5; kill -" + sig +
                            " $pid; wait $pid; echo rc=$?'";
    std::string out;
    test::run_command(cmd, &out);
    INFO(out);
    CHECK(out.find(std::string("rc=") + (std::string(sig) == "TERM" ? "143" : "130")) != std::string::npos);
    CHECK(out.find("interrupted") != std::string::npos);
    CHECK(!fs::exists(out_dir));
    CHECK(!staging_left(s.dir));
  }
}
