// [classify] vit/classify.h and apps/moh-classify: the tiny official golden model (vit_model*.safetensors: config
// and weights from its metadata) classifies PNG fixtures; results must equal a separate per-image forward pass,
// be batch-size independent, skip unreadable files, and the app must report them with exit code 3.
#include <torch/torch.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <random>

#include "common/error.h"
#include "parity/golden.h"
#include "common/image/image_io.h"
#include "common/image/preprocess.h"
#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"
#include "tests/catch_compat.h"
#include "tests/test_support.h"
#include "vit/agreement.h"
#include "vit/classifier.h"
#include "vit/image_inputs.h"

namespace {
namespace fs = std::filesystem;

moh::ImageU8 random_image(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  moh::ImageU8 img;
  img.width = w;
  img.height = h;
  img.rgb.resize((size_t)w * h * 3);
  // Smooth gradients plus noise: varied content, yet not pure noise.
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        img.rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)((x * (c + 1) * 7 + y * (3 - c) * 5 + rng() % 64) & 255);
  return img;
}

struct Fixture {
  moh::vit::ViTConfig cfg;
  std::map<std::string, torch::Tensor> weights;
  std::string dir, weights_path, config_path;
  std::vector<std::string> good, bad;
};

// The golden tiny model, given class names, written as a config JSON + safetensors, plus 3 images and a broken one.
Fixture make_fixture() {
  const auto files = moh::test::data_glob("golden/vit_model*.safetensors");
  REQUIRE(!files.empty());
  moh::GoldenFile g(files.front());
  Fixture f;
  f.cfg = moh::vit::vit_config_from_json(g.config().at("model"));
  for (int64_t i = 0; i < f.cfg.num_classes; ++i) f.cfg.class_names.push_back("class_" + std::to_string(i));
  f.weights = g.weights();
  f.dir = moh::test::temp_dir("classify");
  f.weights_path = f.dir + "/tiny.safetensors";
  f.config_path = f.dir + "/tiny.json";
  std::vector<std::pair<std::string, torch::Tensor>> w(f.weights.begin(), f.weights.end());
  moh::write_safetensors(f.weights_path, w);
  moh::vit::save_vit_config(f.cfg, f.config_path);
  fs::create_directories(f.dir + "/img");
  const int sizes[3][2] = {{97, 71}, {64, 64}, {50, 120}};
  for (int i = 0; i < 3; ++i) {
    f.good.push_back(f.dir + "/img/im" + std::to_string(i) + ".png");
    moh::encode_png(f.good.back(), random_image(sizes[i][0], sizes[i][1], 100 + i));
  }
  f.bad.push_back(f.dir + "/img/zz_broken.png");
  std::ofstream(f.bad.back()) << "this is not a png";
  return f;
}

}  // namespace

TEST_CASE("Classifier top-k equals a separate forward pass and skips unreadable images", "[classify]") {
  auto f = make_fixture();
  moh::vit::Classifier clf(f.cfg, f.weights_path, torch::Device(torch::kCPU), torch::kFloat32);

  // Reference: our model built independently, one image at a time.
  moh::vit::TransNeXt ref(f.cfg);
  moh::load_state_dict(*ref, f.weights);
  ref->eval();
  torch::NoGradGuard no_grad;

  auto inputs = moh::vit::expand_image_inputs({f.dir + "/img"});
  REQUIRE(inputs.size() == 4);  // sorted: the three images, then the broken one
  for (int batch : {1, 3}) {
    auto results = clf.classify_files(inputs, batch, 3);
    REQUIRE(results.size() == 4);
    for (size_t i = 0; i < 3; ++i) {
      INFO(inputs[i] << " batch " << batch);
      REQUIRE(results[i].ok);
      auto x = moh::vit_eval_transform(moh::decode_image_file(inputs[i]), (int)f.cfg.img_size).unsqueeze(0);
      auto probs = ref->forward(x).softmax(-1)[0];  // [classes]
      auto top = std::get<1>(torch::topk(probs, 3));
      REQUIRE(results[i].top.size() == 3);
      for (int k = 0; k < 3; ++k) {
        const auto idx = top[k].item<int64_t>();
        CHECK(results[i].top[k].index == idx);
        CHECK(results[i].top[k].label == "class_" + std::to_string(idx));
        CHECK(std::abs(results[i].top[k].probability - probs[idx].item<float>()) < 1e-5);
        if (k) CHECK(results[i].top[k].probability <= results[i].top[k - 1].probability);
      }
    }
    CHECK_FALSE(results[3].ok);
    CHECK(results[3].error.find("zz_broken.png") != std::string::npos);
  }
  // k larger than the number of classes is clipped.
  auto all = clf.classify_files({f.good[0]}, 1, 1000);
  CHECK(all[0].top.size() == (size_t)f.cfg.num_classes);
}

TEST_CASE("Image input expansion: folders, globs, missing files", "[classify]") {
  auto f = make_fixture();
  auto globbed = moh::vit::expand_image_inputs({f.dir + "/img/im*.png"});
  CHECK(globbed == f.good);
  auto kept = moh::vit::expand_image_inputs({f.dir + "/missing.jpg"});
  CHECK(kept.size() == 1);  // reported when decoded, not here
  fs::create_directories(f.dir + "/empty");
  CHECK_THROWS_AS(moh::vit::expand_image_inputs({f.dir + "/empty"}), moh::Error);
  CHECK_THROWS_AS(moh::vit::expand_image_inputs({f.dir + "/nothing*.png"}), moh::Error);
}

TEST_CASE("moh-classify prints named top-k classes and exits 3 when an image is unreadable", "[classify]") {
  auto f = make_fixture();
  const auto app = moh::test::bin_path("moh-classify");
  REQUIRE(fs::exists(app));
  std::string out;
  const std::string base = app + " --model " + f.config_path + " --weights " + f.weights_path + " --topk 2 --device cpu";
  CHECK(moh::test::run_command(base + " " + f.good[0] + " " + f.good[1], &out) == 0);
  CHECK(out.find("class_") != std::string::npos);
  CHECK(out.find(f.good[1]) != std::string::npos);

  const auto json_path = f.dir + "/out.json";
  CHECK(moh::test::run_command(base + " --json " + json_path + " " + f.dir + "/img", &out) == 3);
  CHECK(out.find("zz_broken.png") != std::string::npos);
  std::ifstream in(json_path);
  nlohmann::json j;
  in >> j;
  REQUIRE(j.at("results").size() == 4);
  CHECK(j["results"][0]["ok"] == true);
  CHECK(j["results"][0]["top"].size() == 2);
  CHECK(j["results"][3]["ok"] == false);

  CHECK(moh::test::run_command(app + " --random-weights --model no-such-model " + f.good[0], &out) == 1);
  CHECK(out.find("moh-vit-s-80") != std::string::npos);  // the error lists the presets
}

TEST_CASE("moh-classify reports a truncated JPEG and a picture above --max-image-pixels as unreadable (exit 3)",
          "[classify]") {
  auto f = make_fixture();
  const auto app = moh::test::bin_path("moh-classify");
  // A 16x12 JPEG and its first half (a download cut short): decoders pad the missing part with grey, Pillow refuses.
  std::ifstream jpg(moh::test::data_path("images/formats/jpeg_baseline_420.jpg"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(jpg)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 100);
  fs::create_directories(f.dir + "/jpg");
  std::ofstream(f.dir + "/jpg/a_whole.jpg", std::ios::binary) << bytes;
  std::ofstream(f.dir + "/jpg/b_half.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  const std::string base = app + " --model " + f.config_path + " --weights " + f.weights_path + " --topk 2 --device cpu";
  std::string out;
  const auto json_path = f.dir + "/trunc.json";
  CHECK(moh::test::run_command(base + " --json " + json_path + " " + f.dir + "/jpg", &out) == 3);
  INFO(out);
  CHECK(out.find("b_half.jpg") != std::string::npos);
  CHECK(out.find("truncated") != std::string::npos);
  std::ifstream in(json_path);
  nlohmann::json j;
  in >> j;
  REQUIRE(j.at("results").size() == 2);
  CHECK(j["results"][0]["ok"] == true);   // the whole file is classified
  CHECK(j["results"][1]["ok"] == false);  // the half is not
  // The pixel limit: 192 pixels pass with --max-image-pixels 192, not with 191 (refused from the header).
  CHECK(moh::test::run_command(base + " --max-image-pixels 192 " + f.dir + "/jpg/a_whole.jpg", &out) == 0);
  CHECK(moh::test::run_command(base + " --max-image-pixels 191 " + f.dir + "/jpg/a_whole.jpg", &out) == 3);
  CHECK(out.find("16x12") != std::string::npos);
  CHECK(out.find("--max-image-pixels") != std::string::npos);
  CHECK(moh::test::run_command(base + " --max-image-pixels 0 " + f.dir + "/jpg/a_whole.jpg", &out) != 0);
}

TEST_CASE("moh-classify refuses to run without weights unless --random-weights is explicit", "[classify]") {
  auto f = make_fixture();
  const auto app = moh::test::bin_path("moh-classify");
  std::string out;
  CHECK(moh::test::run_command(app + " --model " + f.config_path + " --device cpu " + f.good[0], &out) == 1);
  INFO(out);
  CHECK(out.find("--weights is required") != std::string::npos);
  CHECK(out.find("models/moh-vit-fmnist.safetensors") != std::string::npos);  // says where weights come from
  CHECK(moh::test::run_command(app + " --random-weights --model " + f.config_path + " --device cpu " + f.good[0], &out) == 0);
  CHECK(out.find("untrained") != std::string::npos);
  // Weights without a stored config and no --model: the error says to name the architecture.
  CHECK(moh::test::run_command(app + " --weights " + f.weights_path + " --device cpu " + f.good[0], &out) == 1);
  CHECK(out.find("records no model config") != std::string::npos);
}

namespace {
// Runs list_image_files in a child process without root rights (permissions do not stop root), returning the
// listing and what it printed on stderr.
std::vector<std::string> list_as_unprivileged(const std::string& dir, std::string* warnings) {
  int out_pipe[2], err_pipe[2];
  REQUIRE(::pipe(out_pipe) == 0);
  REQUIRE(::pipe(err_pipe) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(err_pipe[1], 2);
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    int rc = 0;
    try {
      std::string all;
      for (const auto& p : moh::vit::list_image_files(dir)) all += p + "\n";
      if (::write(out_pipe[1], all.data(), all.size()) != (ssize_t)all.size()) rc = 4;
    } catch (...) {
      rc = 5;
    }
    ::_exit(rc);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  auto drain = [](int fd) {
    std::string s;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) s.append(buf, size_t(n));
    ::close(fd);
    return s;
  };
  const std::string listing = drain(out_pipe[0]);
  *warnings = drain(err_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  std::vector<std::string> files;
  std::istringstream is(listing);
  for (std::string line; std::getline(is, line);) files.push_back(line);
  return files;
}
}  // namespace

TEST_CASE("Folder walks survive symlink loops and unreadable sub-folders", "[classify]") {
  const auto dir = moh::test::temp_dir("walk");
  fs::create_directories(dir + "/a/b");
  fs::create_directories(dir + "/locked");
  moh::ImageU8 img;
  img.width = img.height = 4;
  img.rgb.assign(48, 100);
  moh::encode_png(dir + "/a/one.png", img);
  moh::encode_png(dir + "/a/b/two.png", img);
  moh::encode_png(dir + "/locked/hidden.png", img);
  fs::create_directory_symlink(dir, dir + "/a/b/loop");   // points back at the root: a cycle
  fs::create_directory_symlink(dir + "/a", dir + "/alias");  // a second name for a folder: entered once
  fs::create_directory_symlink(dir + "/missing", dir + "/dangling");

  const auto files = moh::vit::list_image_files(dir);
  INFO(files.size());
  REQUIRE(files.size() == 3);  // one.png, two.png, hidden.png, each once, the loop not followed forever
  CHECK(std::is_sorted(files.begin(), files.end()));

  // An unreadable sub-folder is skipped with a warning; the rest is still listed.
  fs::permissions(dir + "/locked", fs::perms::none);
  fs::permissions(dir, fs::perms::all);
  std::string warnings;
  const auto visible = list_as_unprivileged(dir, &warnings);
  fs::permissions(dir + "/locked", fs::perms::owner_all);
  INFO(warnings);
  CHECK(visible.size() == 2);
  CHECK(warnings.find("locked") != std::string::npos);
}
