// [api] The public API a program embedding the toolkit uses (vit/classifier.h, vit/evaluator.h, dit/generator.h),
// exercised on the shipped demo models: opening from files, class resolution, recorded sampler defaults, results,
// and errors that speak of the library's parameters (never of CLI flags, which only the apps know).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/datasets/idx.h"
#include "common/image/image_io.h"
#include "common/weights/safetensors.h"
#include "dit/generator.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"
#include "vit/classifier.h"
#include "vit/evaluator.h"

namespace {

using moh::test::repo_path;
const std::string kDemoViT = "models/moh-vit-fmnist.safetensors";
const std::string kDemoDiT = "models/moh-dit-fmnist.safetensors";

bool mentions_a_flag(const std::string& message) { return message.find("--") != std::string::npos; }

}  // namespace

TEST_CASE("Classifier opens a self-describing weights file and classifies a picture", "[api]") {
  moh::vit::ClassifierOptions o;
  o.weights = repo_path(kDemoViT);
  o.device = "cpu";
  moh::vit::Classifier clf(o);
  CHECK(clf.config_origin() == "weights metadata");
  CHECK(clf.dtype() == torch::kFloat32);
  const auto x = clf.preprocess(moh::decode_image_file(moh::test::data_path("images/gray8.png")));  // [1, S, S]
  const int64_t S = clf.config().img_size;
  REQUIRE(x.sizes() == torch::IntArrayRef({1, S, S}));
  const auto top = clf.top_k(clf.logits(x.unsqueeze(0)), 3);
  REQUIRE(top.size() == 1);
  REQUIRE(top[0].size() == 3);
  CHECK(top[0][0].probability >= top[0][1].probability);
  CHECK(top[0][0].label == clf.config().class_names.at(top[0][0].index));

  moh::vit::ClassifierOptions none;
  const auto e1 = moh::test::error_message([&] { moh::vit::Classifier c(none); });
  CHECK(moh::test::contains(e1, "no weights file given"));
  CHECK_FALSE(mentions_a_flag(e1));
  moh::vit::ClassifierOptions rnd;
  rnd.random_weights = true;
  const auto e2 = moh::test::error_message([&] { moh::vit::Classifier c(rnd); });
  CHECK(moh::test::contains(e2, "model preset"));
  CHECK_FALSE(mentions_a_flag(e2));
}

TEST_CASE("Evaluator runs a dataset and its per-image predictions agree with the counts", "[api]") {
  const std::string data = moh::default_fashion_mnist_dir();
  if (!MOH_NEED(!data.empty(), "dataset-fashion-mnist is not installed (scripts/setup-deps.sh installs it)")) return;
  moh::vit::ClassifierOptions o;
  o.weights = repo_path(kDemoViT);
  o.device = "cpu";
  moh::vit::Classifier clf(o);
  const auto ds = moh::vit::subset_evenly(moh::vit::list_eval_dataset(data, "", clf.config(), "test"), 300);
  moh::vit::EvalOptions eo;
  eo.progress = false;
  int64_t progressed = 0;
  eo.on_progress = [&](int64_t n) { progressed += n; };
  const auto r = moh::vit::Evaluator(clf, eo).run(ds);
  CHECK(r.images == 300);
  CHECK(progressed == 300);
  CHECK(r.top1() > 80.0);  // the model card measures 88.86 % on all 10,000 test images
  const auto dir = moh::test::temp_dir("api_eval");
  moh::vit::write_predictions_csv(dir + "/p.csv", ds, r, clf);
  std::ifstream in(dir + "/p.csv");
  std::string line;
  std::getline(in, line);
  CHECK(line == "path,label,label_name,predicted,predicted_name,correct,error");
  int64_t rows = 0, correct = 0;
  while (std::getline(in, line)) {
    ++rows;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    REQUIRE(f.size() >= 6);
    correct += f[5] == "1";
    CHECK((f[5] == "1") == (f[1] == f[3]));
  }
  CHECK(rows == 300);
  CHECK(correct == r.top1_correct);
}

TEST_CASE("Generator opens the demo DiT, applies its recorded sampler settings and generates", "[api]") {
  moh::dit::GeneratorOptions o;
  o.weights = repo_path(kDemoDiT);
  o.device = "cpu";
  moh::dit::Generator gen(o);
  CHECK(gen.vae() == nullptr);  // pixel-space model
  CHECK(gen.image_size() == 28);
  const auto p0 = gen.default_params();
  CHECK(p0.steps == 100);  // recorded in the weights' "sampling" metadata (official default: 250)
  const auto sampling = nlohmann::json::parse(moh::SafetensorsFile(repo_path(kDemoDiT)).meta("sampling"));
  CHECK(p0.cfg_scale == sampling.at("cfg_scale").get<double>());
  CHECK(p0.cfg_scale != 1.5);  // the recorded setting, not the generic default
  CHECK(p0.clip_denoised);
  CHECK(gen.resolve_classes({"trouser", "9"}) == std::vector<int64_t>{1, 9});
  CHECK(gen.resolve_classes({"all"}).size() == 10);
  CHECK(gen.file_stem(9) == "9_ankle_boot");
  const auto e = moh::test::error_message([&] { gen.resolve_classes({"trousr"}); });
  CHECK(moh::test::contains(e, "Trouser"));
  CHECK_FALSE(mentions_a_flag(e));
  const auto e2 = moh::test::error_message([&] { gen.resolve_classes({}); });
  CHECK_FALSE(mentions_a_flag(e2));

  auto p = p0;
  p.labels = {1, 1, 9};
  p.steps = 4;
  p.progress = false;
  int64_t steps_seen = 0;
  p.on_step = [&](int64_t) { ++steps_seen; };
  const auto images = gen.generate(p);  // [3, 28, 28, 3] uint8
  CHECK(images.sizes() == torch::IntArrayRef({3, 28, 28, 3}));
  CHECK(images.scalar_type() == torch::kUInt8);
  CHECK(steps_seen == 4);
  // Gray model: the three channels are copies; different seeds give different pictures.
  CHECK(torch::equal(images.select(3, 0), images.select(3, 2)));
  auto q = p;
  q.seed = 1;
  CHECK_FALSE(torch::equal(gen.generate(q), images));

  moh::dit::GeneratorOptions none;
  const auto e3 = moh::test::error_message([&] { moh::dit::Generator g(none); });
  CHECK(moh::test::contains(e3, "no DiT weights file given"));
  CHECK_FALSE(mentions_a_flag(e3));
}

TEST_CASE("The API takes a precision policy: mixed keeps the stream fp32 and stays near fp32", "[api]") {
  const auto picture = moh::decode_image_file(moh::test::data_path("images/gray8.png"));
  moh::vit::ClassifierOptions o;
  o.weights = repo_path(kDemoViT);
  o.device = "cpu";
  moh::vit::Classifier fp32(o);
  o.dtype = "mixed";
  moh::vit::Classifier mixed(o);
  CHECK(mixed.precision() == moh::Precision::kMixed);
  CHECK(mixed.dtype() == torch::kFloat32);  // inputs and the residual stream
  const auto x = fp32.preprocess(picture).unsqueeze(0);  // [1, C, S, S]
  const auto a = torch::softmax(fp32.logits(x), -1), b = torch::softmax(mixed.logits(x), -1);  // [1, 10]
  const double err = (a - b).abs().max().item<double>();
  INFO("max |p_fp32 - p_mixed| = " << err);
  CHECK(err > 0);     // the GEMMs really ran in bf16
  CHECK(err < 0.05);  // bf16 GEMM rounding, not a different model
  o.dtype = "fp8";
  const auto e = moh::test::error_message([&] { moh::vit::Classifier c(o); });
  CHECK(moh::test::contains(e, "dtype 'fp8'"));
  CHECK_FALSE(mentions_a_flag(e));

  moh::dit::GeneratorOptions g;
  g.weights = repo_path(kDemoDiT);
  g.device = "cpu";
  g.dtype = "mixed";
  moh::dit::Generator gen(g);
  CHECK(gen.precision() == moh::Precision::kMixed);
  CHECK(gen.describe().at("dtype") == "mixed");
  auto p = gen.default_params();
  p.labels = {1};
  p.steps = 2;
  p.progress = false;
  CHECK(gen.generate(p).sizes() == torch::IntArrayRef({1, 28, 28, 3}));
}
