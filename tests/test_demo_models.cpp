// [demo] The shipped demo models (models/moh-vit-fmnist.safetensors, models/moh-dit-fmnist.safetensors): they load,
// their metadata parses, their sha256 matches the model card, the ViT reaches its measured top-1 on the 10,000
// Fashion-MNIST test images through moh-eval, and the DiT's samples are recognised by the ViT (class agreement,
// judged per requested class) through moh-generate | moh-classify --agreement, as scripts/demo.sh runs them.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/datasets/idx.h"
#include "common/io/sha256.h"
#include "common/weights/weights_file.h"
#include "dit/model_source.h"
#include "tests/catch_compat.h"
#include "tests/test_support.h"
#include "vit/model_source.h"

namespace fs = std::filesystem;

namespace {

using moh::test::repo_path;

// The "sha256" the model card states for its weights file (a line "sha256: <64 hex digits>").
std::string card_sha256(const std::string& card) {
  std::ifstream in(card);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  std::smatch m;
  const std::string text = ss.str();
  REQUIRE(std::regex_search(text, m, std::regex("sha256: ([0-9a-f]{64})")));
  return m[1].str();
}

// The threshold the model card states on a line "test threshold: <value>" (fraction in [0, 1]).
double card_threshold(const std::string& card, const std::string& what) {
  std::ifstream in(card);
  std::stringstream ss;
  ss << in.rdbuf();
  std::smatch m;
  const std::string text = ss.str();
  REQUIRE(std::regex_search(text, m, std::regex(what + " threshold: ([0-9.]+)")));
  return std::stod(m[1].str());
}

}  // namespace

TEST_CASE("The demo models load, describe themselves and match their model cards' sha256", "[demo]") {
  for (const char* name : {"moh-vit-fmnist", "moh-dit-fmnist"}) {
    INFO(name);
    const auto weights = repo_path(std::string("models/") + name + ".safetensors");
    REQUIRE(fs::exists(weights));
    CHECK(fs::file_size(weights) <= 8u * 1024 * 1024);
    CHECK(moh::sha256_file(weights) == card_sha256(repo_path(std::string("models/") + name + ".md")));
    moh::WeightsFile f(weights);
    CHECK(f.meta("format") == "moh-model-v1");
    CHECK(f.meta("class_names").find("Ankle boot") != std::string::npos);
  }
  const auto vit = moh::vit::resolve_vit_source(repo_path("models/moh-vit-fmnist.safetensors"), "");
  CHECK(vit.config_origin == "weights metadata");
  CHECK(vit.fmnist.has_value());
  CHECK(vit.config.in_chans == 1);
  CHECK(vit.config.class_names.size() == 10);
  const auto dit = moh::dit::resolve_dit_source(repo_path("models/moh-dit-fmnist.safetensors"), "");
  CHECK(dit.config_origin == "weights metadata");
  CHECK(dit.pixel_space);
  CHECK(dit.class_names.at(1) == "Trouser");
  CHECK(moh::dit::resolve_dit_class("trouser", dit) == 1);
  CHECK(dit.sampling.contains("cfg_scale"));
}

TEST_CASE("The demo ViT reaches its measured top-1 on the Fashion-MNIST test set through moh-eval", "[demo]") {
  const std::string data = moh::default_fashion_mnist_dir();
  if (!MOH_NEED(!data.empty(), "dataset-fashion-mnist is not installed (scripts/setup-deps.sh installs it)")) return;
  const auto dir = moh::test::temp_dir("demo_eval");
  std::string out;
  const int rc = moh::test::run_command(moh::test::bin_path("moh-eval") + " -q --weights " +
                                            repo_path("models/moh-vit-fmnist.safetensors") + " --data " + data +
                                            " --split test --device cpu --threads 1 --json " + dir + "/eval.json",
                                        &out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto j = moh::test::read_json(dir + "/eval.json");
  CHECK(j.at("images") == 10000);
  const double top1 = j.at("top1").get<double>() / 100.0;  // percent in the JSON
  const double threshold = card_threshold(repo_path("models/moh-vit-fmnist.md"), "top-1");
  INFO("top-1 " << top1 << ", threshold " << threshold);
  CHECK(top1 >= threshold);
  CHECK(j.at("per_class").size() == 10);
}

TEST_CASE("The demo DiT's samples are recognised by the demo ViT (class agreement)", "[demo]") {
  const auto dir = moh::test::temp_dir("demo_agree");
  std::string out;
  int rc = moh::test::run_command(moh::test::bin_path("moh-generate") + " -q --weights " +
                                      repo_path("models/moh-dit-fmnist.safetensors") +
                                      " --class all --num-per-class 20 --batch-size 100 --seed 1 --device cpu --threads 1 --out " +
                                      dir + "/samples",
                                  &out);
  INFO(out);
  REQUIRE(rc == 0);
  rc = moh::test::run_command(moh::test::bin_path("moh-classify") + " --weights " +
                                  repo_path("models/moh-vit-fmnist.safetensors") + " --agreement --no-list --device cpu --threads 1" +
                                  " --json " + dir + "/agreement.json " + dir + "/samples",
                              &out);
  INFO(out);
  REQUIRE(rc == 0);
  const auto j = moh::test::read_json(dir + "/agreement.json");
  const auto& a = j.at("agreement");
  CHECK(a.at("images") == 200);
  CHECK(a.at("per_class").size() == 10);
  const double threshold = card_threshold(repo_path("models/moh-dit-fmnist.md"), "agreement");
  INFO("agreement " << a.at("rate").get<double>() << ", threshold " << threshold);
  CHECK(a.at("rate").get<double>() >= threshold);
  CHECK(threshold > 0.3);  // far above chance (0.1)
  // Every class, not only the mean: the card states the lowest per-class rate the suite accepts.
  const double class_threshold = card_threshold(repo_path("models/moh-dit-fmnist.md"), "lowest-class");
  CHECK(class_threshold > 0.1);
  for (const auto& row : a.at("per_class")) {
    INFO("class " << row.at("name").get<std::string>() << ": " << row.at("rate").get<double>());
    CHECK(row.at("images") == 20);
    CHECK(row.at("rate").get<double>() >= class_threshold);
  }
}
