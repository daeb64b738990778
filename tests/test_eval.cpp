// [eval] vit/evaluate.h and apps/moh-eval: an ImageFolder fixture built in a temp dir for the tiny official golden
// model (config and weights from vit_model*.safetensors). Each image is put in the folder of the class the model
// itself predicts for it (computed separately, one image per forward) or deliberately in another one, so the exact
// top-1 / top-5 / per-class counts are known; one unreadable file must be counted and listed, not fatal.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "common/error.h"
#include "parity/golden.h"
#include "common/image/image_io.h"
#include "common/weights/safetensors.h"
#include "common/io/sha256.h"
#include "common/weights/state_dict.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"
#include "vit/evaluator.h"

namespace {
namespace fs = std::filesystem;

struct Expected {
  int64_t top1 = 0, top5 = 0, images = 0;
  std::map<int64_t, moh::vit::ClassStats> per_class;
};

struct EvalFixture {
  moh::vit::ViTConfig cfg;
  std::map<std::string, torch::Tensor> weights;
  std::string dir;
  std::vector<std::string> sources;   // images in a staging folder
  std::vector<int64_t> predicted;     // the model's own top-1 per source image (batch of one)
  std::vector<torch::Tensor> logits;  // [classes] per source image
};

EvalFixture make_fixture() {
  const auto files = moh::test::data_glob("golden/vit_model*.safetensors");
  REQUIRE(!files.empty());
  moh::GoldenFile g(files.front());
  EvalFixture f;
  f.cfg = moh::vit::vit_config_from_json(g.config().at("model"));
  for (int64_t i = 0; i < f.cfg.num_classes; ++i) f.cfg.class_names.push_back("cls" + std::to_string(i));
  f.weights = g.weights();
  f.dir = moh::test::temp_dir("eval");
  fs::create_directories(f.dir + "/src");
  std::mt19937 rng(7);
  for (int i = 0; i < 7; ++i) {
    moh::ImageU8 img;
    img.width = 60 + 9 * i;
    img.height = 90 - 5 * i;
    img.rgb.resize((size_t)img.width * img.height * 3);
    for (auto& p : img.rgb) p = (uint8_t)(rng() & 255);
    f.sources.push_back(f.dir + "/src/im" + std::to_string(i) + ".png");
    moh::encode_png(f.sources.back(), img);
  }
  return f;
}

}  // namespace

TEST_CASE("Evaluation counts top-1/top-5/per-class exactly, with an unreadable file", "[eval]") {
  auto f = make_fixture();
  moh::vit::TransNeXt model(f.cfg);
  moh::load_state_dict(*model, f.weights);
  moh::vit::Classifier clf(model, torch::Device(torch::kCPU), torch::kFloat32);
  for (const auto& s : f.sources) {
    auto l = clf.logits(clf.preprocess(moh::decode_image_file(s)).unsqueeze(0))[0];  // batch of one
    f.logits.push_back(l);
    f.predicted.push_back(l.argmax().item<int64_t>());
  }

  // Even images go to their predicted class (top-1 hit), odd ones to their 3rd-best class (top-5 hit only).
  const auto root = f.dir + "/imagenet";
  Expected ex;
  std::vector<std::pair<std::string, int64_t>> placed;
  for (size_t i = 0; i < f.sources.size(); ++i) {
    auto order = std::get<1>(torch::sort(f.logits[i], 0, /*descending=*/true));
    const int64_t label = i % 2 == 0 ? f.predicted[i] : order[2].item<int64_t>();
    const auto dst = root + "/val/cls" + std::to_string(label) + "/im" + std::to_string(i) + ".png";
    fs::create_directories(fs::path(dst).parent_path());
    fs::copy_file(f.sources[i], dst);
    placed.push_back({dst, label});
    const bool t1 = i % 2 == 0;
    ex.top1 += t1;
    ex.top5 += 1;  // rank 0 or rank 2: inside the top 5 of 10 classes
    ex.images++;
    auto& pc = ex.per_class[label];
    pc.images++;
    pc.top1 += t1;
    pc.topk += 1;
  }
  // An unreadable file inside a class folder: counted, listed, not evaluated.
  const auto broken = root + "/val/cls" + std::to_string(placed[0].second) + "/broken.JPEG";
  std::ofstream(broken) << "not a jpeg";

  auto ds = moh::vit::list_eval_dataset(root, "", f.cfg);
  CHECK(ds.layout == "imagefolder");
  CHECK(ds.mapping == "folder names");
  REQUIRE(ds.samples.size() == f.sources.size() + 1);

  moh::vit::EvalOptions o;
  o.batch_size = 3;
  o.workers = 2;
  o.progress = false;
  auto r = moh::vit::evaluate(clf, ds, o);
  CHECK(r.images == ex.images);
  CHECK(r.failed == 1);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].path == broken);
  CHECK(r.top1_correct == ex.top1);
  CHECK(r.topk_correct == ex.top5);
  CHECK(r.topk == 5);
  CHECK(r.top1() == Approx(100.0 * ex.top1 / ex.images).epsilon(1e-12));
  CHECK(r.topk_accuracy() == Approx(100.0).epsilon(1e-12));
  for (int64_t c = 0; c < f.cfg.num_classes; ++c) {
    INFO("class " << c);
    const auto it = ex.per_class.find(c);
    const moh::vit::ClassStats want = it == ex.per_class.end() ? moh::vit::ClassStats{} : it->second;
    CHECK(r.per_class[c].images == want.images);
    CHECK(r.per_class[c].top1 == want.top1);
    CHECK(r.per_class[c].topk == want.topk);
  }
  // Predictions line up with the dataset order; the failed sample has none.
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    if (ds.samples[i].path == broken) {
      CHECK(r.predictions[i] == -1);
      continue;
    }
    const auto name = fs::path(ds.samples[i].path).stem().string();  // "im<k>"
    CHECK(r.predictions[i] == f.predicted[std::stoi(name.substr(2))]);
  }

  // Same counts from a flat folder + label file (labels given as names and as indices), and from a subset.
  const auto flat = f.dir + "/flat";
  fs::create_directories(flat);
  std::ofstream labels(f.dir + "/labels.txt");
  labels << "# file label\n";
  for (size_t i = 0; i < placed.size(); ++i) {
    const auto name = "img " + std::to_string(i) + ".png";  // a space in the name: the label is the last field
    fs::copy_file(placed[i].first, flat + "/" + name);
    labels << name << " " << (i % 2 ? std::to_string(placed[i].second) : "cls" + std::to_string(placed[i].second))
           << "\n";
  }
  labels.close();
  auto flat_ds = moh::vit::list_eval_dataset(flat, f.dir + "/labels.txt", f.cfg);
  CHECK(flat_ds.layout == "labels-file");
  auto rf = moh::vit::evaluate(clf, flat_ds, o);
  CHECK(rf.images == ex.images);
  CHECK(rf.failed == 0);
  CHECK(rf.top1_correct == ex.top1);
  CHECK(rf.topk_correct == ex.top5);

  auto sub = moh::vit::subset_evenly(flat_ds, 3);
  REQUIRE(sub.samples.size() == 3);
  CHECK(sub.samples[1].path == flat_ds.samples[7 / 3].path);  // index 1*7/3 = 2
}

TEST_CASE("Dataset listing: sorted-folder fallback and bad label files", "[eval]") {
  auto f = make_fixture();
  const auto root = f.dir + "/plain";
  for (const char* cls : {"b_dogs", "a_cats"}) {
    fs::create_directories(root + "/" + cls);
    fs::copy_file(f.sources[0], root + "/" + cls + "/x.png");
  }
  auto ds = moh::vit::list_eval_dataset(root, "", f.cfg);
  CHECK(ds.mapping == "sorted folder order");
  REQUIRE(ds.samples.size() == 2);
  CHECK(ds.samples[0].label == 0);  // a_cats
  CHECK(fs::path(ds.samples[0].path).parent_path().filename() == "a_cats");
  CHECK(ds.samples[1].label == 1);

  std::ofstream(f.dir + "/bad_labels.txt") << "x.png no_such_class\n";
  CHECK_THROWS_AS(moh::vit::list_eval_dataset(root, f.dir + "/bad_labels.txt", f.cfg), moh::Error);
  CHECK_THROWS_AS(moh::vit::list_eval_dataset(f.dir + "/missing", "", f.cfg), moh::Error);
}

TEST_CASE("Class folders named by over-long numbers get a clear error", "[eval]") {
  auto f = make_fixture();
  const auto root = f.dir + "/digits";
  fs::create_directories(root + "/000000000000000000000000000001");  // many leading zeros: still class 1
  fs::copy_file(f.sources[0], root + "/000000000000000000000000000001/a.png");
  auto ds = moh::vit::list_eval_dataset(root, "", f.cfg);
  CHECK(ds.samples.at(0).label == 1);
  fs::create_directories(root + "/123456789012345678901234567890");
  fs::copy_file(f.sources[1], root + "/123456789012345678901234567890/b.png");
  const auto msg = moh::test::error_message([&] { moh::vit::list_eval_dataset(root, "", f.cfg); });
  CHECK(msg.find("123456789012345678901234567890") != std::string::npos);
  CHECK(msg.find("too large") != std::string::npos);
}

TEST_CASE("moh-eval writes a summary JSON and per-class CSV", "[eval]") {
  auto f = make_fixture();
  const auto app = moh::test::bin_path("moh-eval");
  REQUIRE(fs::exists(app));
  std::vector<std::pair<std::string, torch::Tensor>> w(f.weights.begin(), f.weights.end());
  moh::write_safetensors(f.dir + "/tiny.safetensors", w);
  moh::vit::save_vit_config(f.cfg, f.dir + "/tiny.json");
  // Images 0 and 2 go to the class the model predicts for them (batch of one, computed here), 1 and 3 to another
  // class: top-1 is then known to be exactly 2 of 4 = 50 %.
  moh::vit::TransNeXt model(f.cfg);
  moh::load_state_dict(*model, f.weights);
  moh::vit::Classifier clf(model, torch::Device(torch::kCPU), torch::kFloat32);
  const auto root = f.dir + "/data";
  for (int i = 0; i < 4; ++i) {
    const auto l = clf.logits(clf.preprocess(moh::decode_image_file(f.sources[i])).unsqueeze(0))[0];
    const int64_t pred = l.argmax().item<int64_t>();
    const int64_t label = i % 2 == 0 ? pred : (pred + 1) % f.cfg.num_classes;
    fs::create_directories(root + "/cls" + std::to_string(label));
    fs::copy_file(f.sources[i], root + "/cls" + std::to_string(label) + "/im" + std::to_string(i) + ".png");
  }
  const auto some_class = fs::directory_iterator(root)->path().string();
  std::ofstream(some_class + "/bad.png") << "broken";
  // The first half of a valid JPEG: decoders pad it (grey) and go on, Pillow refuses it; so must we (not counted).
  {
    std::ifstream jpg(moh::test::data_path("images/formats/jpeg_baseline_420.jpg"), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(jpg)), std::istreambuf_iterator<char>());
    REQUIRE(bytes.size() > 100);
    std::ofstream(some_class + "/half.JPEG", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  std::string out;
  const int rc = moh::test::run_command(app + " --model " + f.dir + "/tiny.json --weights " + f.dir +
                                            "/tiny.safetensors --data " + root + " --device cpu --batch-size 2 " +
                                            "--workers 2 -q --json " + f.dir + "/sum.json --csv " + f.dir + "/pc.csv",
                                        &out);
  INFO(out);
  REQUIRE(rc == 3);  // unreadable images: results are written, but the exit code says something failed
  CHECK(out.find("bad.png") != std::string::npos);
  CHECK(out.find("half.JPEG") != std::string::npos);
  CHECK(out.find("truncated") != std::string::npos);
  std::ifstream in(f.dir + "/sum.json");
  nlohmann::json j;
  in >> j;
  CHECK(j.at("images") == 4);
  CHECK(j.at("unreadable") == 2);
  CHECK(j.at("weights_sha256").get<std::string>() == moh::sha256_file(f.dir + "/tiny.safetensors"));
  CHECK(j.at("weights_sha256").get<std::string>().size() == 64);
  CHECK(j.at("settings").at("batch_size") == 2);
  CHECK(j.at("top1_correct") == 2);
  CHECK(j.at("top1").get<double>() == Approx(50.0));
  std::ifstream csv(f.dir + "/pc.csv");
  std::string header, row;
  std::getline(csv, header);
  CHECK(header.rfind("class_index,class_id,class_name,images", 0) == 0);
  int rows = 0, images = 0;
  while (std::getline(csv, row)) {
    ++rows;
    std::stringstream ss(row);
    std::string field;
    for (int k = 0; k < 4; ++k) std::getline(ss, field, ',');
    images += std::stoi(field);
  }
  CHECK(images == 4);
  CHECK(rows >= 1);

  // --max-image-pixels below the picture's size (60x90): refused from its header, so no image can be read.
  const auto limit_root = f.dir + "/limit";
  fs::create_directories(limit_root + "/cls0");
  fs::copy_file(f.sources[0], limit_root + "/cls0/im0.png");
  const std::string limit_args = " --model " + f.dir + "/tiny.json --weights " + f.dir + "/tiny.safetensors --data " +
                                 limit_root + " --device cpu -q";
  CHECK(moh::test::run_command(app + limit_args + " --max-image-pixels 5400", &out) == 0);  // 60 * 90: allowed
  const int rc_limit = moh::test::run_command(app + limit_args + " --max-image-pixels 5399", &out);
  INFO(out);
  CHECK(rc_limit == 1);
  CHECK(out.find("60x90") != std::string::npos);
  CHECK(out.find("--max-image-pixels") != std::string::npos);
  CHECK(out.find("more than the limit of 5399") != std::string::npos);
}

TEST_CASE("moh-eval fails clearly when no image can be read, and --json - writes to stdout", "[eval]") {
  auto f = make_fixture();
  const auto app = moh::test::bin_path("moh-eval");
  std::vector<std::pair<std::string, torch::Tensor>> w(f.weights.begin(), f.weights.end());
  moh::write_safetensors(f.dir + "/tiny.safetensors", w);
  moh::vit::save_vit_config(f.cfg, f.dir + "/tiny.json");
  const std::string args = " --model " + f.dir + "/tiny.json --weights " + f.dir + "/tiny.safetensors --device cpu -q";
  const auto bad_root = f.dir + "/allbad";
  fs::create_directories(bad_root + "/cls0");
  fs::create_directories(bad_root + "/cls1");
  std::ofstream(bad_root + "/cls0/a.png") << "broken";
  std::ofstream(bad_root + "/cls1/b.png") << "also broken";
  std::string out;
  int rc = moh::test::run_command(app + args + " --data " + bad_root + " --json " + f.dir + "/none.json", &out);
  INFO(out);
  CHECK(rc == 1);
  CHECK(out.find("none of the 2 images") != std::string::npos);
  CHECK_FALSE(fs::exists(f.dir + "/none.json"));

  // --json - : the summary goes to standard output, no file named '-' appears.
  const auto good_root = f.dir + "/good";
  fs::create_directories(good_root + "/cls0");
  fs::copy_file(f.sources[0], good_root + "/cls0/im0.png");
  const auto cwd = fs::current_path();
  fs::current_path(f.dir);
  rc = moh::test::run_command(app + args + " --data " + good_root + " --json - 2>/dev/null", &out);
  fs::current_path(cwd);
  INFO(out);
  CHECK(rc == 0);
  CHECK_FALSE(fs::exists(f.dir + "/-"));
  const auto brace = out.find('{');
  REQUIRE(brace != std::string::npos);
  const auto j = nlohmann::json::parse(out.substr(brace));
  CHECK(j.at("images") == 1);
}

TEST_CASE("--threads sets the model's CPU threads; the default is every core unless OMP_NUM_THREADS says otherwise",
          "[eval]") {
  auto f = make_fixture();
  std::vector<std::pair<std::string, torch::Tensor>> w(f.weights.begin(), f.weights.end());
  moh::write_safetensors(f.dir + "/tiny.safetensors", w);
  moh::vit::save_vit_config(f.cfg, f.dir + "/tiny.json");
  const auto root = f.dir + "/data";
  fs::create_directories(root + "/cls0");
  fs::copy_file(f.sources[0], root + "/cls0/a.png");
  const std::string args = " --model " + f.dir + "/tiny.json --weights " + f.dir + "/tiny.safetensors --device cpu -q" +
                           " --data " + root + " --json - 2>/dev/null";
  auto threads_of = [&](const std::string& prefix, const std::string& extra) {
    std::string out;
    const int rc = moh::test::run_command(prefix + moh::test::bin_path("moh-eval") + args + extra, &out);
    INFO(out);
    REQUIRE(rc == 0);
    return nlohmann::json::parse(out.substr(out.find('{'))).at("settings").at("threads").get<int>();
  };
  std::string nproc;
  // The cores this process may use (sched affinity); nproc itself honours OMP_NUM_THREADS, so it runs without it.
  REQUIRE(moh::test::run_command("env -u OMP_NUM_THREADS nproc", &nproc) == 0);
  CHECK(threads_of("env -u OMP_NUM_THREADS ", "") == std::stoi(nproc));
  CHECK(threads_of("env -u OMP_NUM_THREADS ", " --threads 1") == 1);
  CHECK(threads_of("OMP_NUM_THREADS=1 ", "") == 1);
  CHECK(threads_of("OMP_NUM_THREADS=1 ", " --threads 3") == 3);
}
