// Tests of common/weights/state_dict: strict state_dict loading into a small torch::nn module (missing, unexpected and
// shape-mismatched keys all listed in one error; renames, prefixes, ignores; dtype conversion; loading from a file).
#include <map>
#include <string>

#include "common/weights/safetensors.h"
#include "common/weights/state_dict.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

using moh::test::contains;
using moh::test::error_message;

namespace {

struct BlockImpl : torch::nn::Module {
  torch::nn::Linear proj{nullptr};
  BlockImpl() { proj = register_module("proj", torch::nn::Linear(4, 2)); }
};
TORCH_MODULE(Block);

// Parameters fc.weight [3,4], fc.bias [3], block.proj.weight [2,4], block.proj.bias [2]; buffers scale [3] (float)
// and steps [1] (int64).
struct TinyImpl : torch::nn::Module {
  torch::nn::Linear fc{nullptr};
  Block block{nullptr};
  torch::Tensor scale, steps;
  TinyImpl() {
    fc = register_module("fc", torch::nn::Linear(4, 3));
    block = register_module("block", Block());
    scale = register_buffer("scale", torch::ones({3}));
    steps = register_buffer("steps", torch::zeros({1}, torch::kInt64));
  }
};
TORCH_MODULE(Tiny);

// A full, distinct-valued checkpoint for Tiny.
std::map<std::string, torch::Tensor> checkpoint() {
  return {
      {"fc.weight", torch::arange(12, torch::kFloat32).view({3, 4})},
      {"fc.bias", torch::tensor({0.5f, -1.f, 2.f})},
      {"block.proj.weight", torch::arange(8, torch::kFloat32).view({2, 4}) * -1},
      {"block.proj.bias", torch::tensor({7.f, 8.f})},
      {"scale", torch::tensor({3.f, 4.f, 5.f})},
      {"steps", torch::tensor({int64_t{42}})},
  };
}

void check_loaded(Tiny& m, const std::map<std::string, torch::Tensor>& ck) {
  for (const auto& [name, t] : moh::state_dict(*m)) {
    INFO(name);
    CHECK(torch::equal(t.to(ck.at(name).scalar_type()), ck.at(name)));
  }
}

}  // namespace

TEST_CASE("a complete state dict loads every parameter and buffer", "[weights]") {
  Tiny m;
  const auto ck = checkpoint();
  moh::load_state_dict(*m, ck);
  check_loaded(m, ck);
  CHECK(m->steps.scalar_type() == torch::kInt64);
}

TEST_CASE("missing, unexpected and mismatched keys are all reported in one error", "[weights]") {
  Tiny m;
  auto ck = checkpoint();
  ck.erase("fc.bias");
  ck.erase("scale");
  ck["head.weight"] = torch::zeros({5});
  ck["block.proj.weight"] = torch::zeros({4, 2});
  const auto before = m->fc->weight.clone();
  moh::LoadOptions o;
  o.source = "'tiny.safetensors'";
  const std::string msg = error_message([&] { moh::load_state_dict(*m, ck, o); });
  INFO(msg);
  CHECK(contains(msg, "tiny.safetensors"));
  CHECK(contains(msg, "2 missing, 1 unexpected, 1 shape mismatches"));
  CHECK(contains(msg, "fc.bias"));
  CHECK(contains(msg, "scale"));
  CHECK(contains(msg, "head.weight [5]"));
  CHECK(contains(msg, "block.proj.weight: checkpoint [4, 2] vs model [2, 4]"));
  // Nothing was copied: a failed load leaves the module as it was.
  CHECK(torch::equal(m->fc->weight, before));
}

TEST_CASE("renames, stripped prefixes and ignored keys map another checkpoint dialect", "[weights]") {
  Tiny m;
  std::map<std::string, torch::Tensor> ck;
  for (auto& [k, v] : checkpoint()) {
    std::string key = "module." + k;                     // DataParallel prefix
    const auto pos = key.find("block.proj");
    if (pos != std::string::npos) key.replace(pos, 10, "blk.out");  // another dialect's names
    ck[key] = v;
  }
  ck["module.encoder.conv.weight"] = torch::zeros({1});  // part of the checkpoint we do not use
  moh::LoadOptions o;
  o.strip_prefixes = {"module."};
  o.renames = {{"blk.out", "block.proj"}};
  CHECK_THROWS_AS(moh::load_state_dict(*m, ck, o), moh::Error);  // encoder.* is unexpected until ignored
  o.ignore_prefixes = {"module.encoder."};
  moh::load_state_dict(*m, ck, o);
  check_loaded(m, checkpoint());
}

TEST_CASE("dtype conversion: half checkpoints load into float modules, LoadOptions.dtype converts floats only",
          "[weights]") {
  const auto ck = checkpoint();
  std::map<std::string, torch::Tensor> half;
  for (auto& [k, v] : ck) half[k] = v.is_floating_point() ? v.to(torch::kFloat16) : v;
  {
    Tiny m;
    moh::load_state_dict(*m, half);
    CHECK(m->fc->weight.scalar_type() == torch::kFloat32);
    check_loaded(m, ck);  // the values are exactly representable in fp16
  }
  {
    Tiny m;
    moh::LoadOptions o;
    o.dtype = torch::kFloat64;
    moh::load_state_dict(*m, ck, o);
    CHECK(m->fc->weight.scalar_type() == torch::kFloat64);
    CHECK(m->scale.scalar_type() == torch::kFloat64);
    CHECK(m->steps.scalar_type() == torch::kInt64);  // integer buffers keep their dtype
    check_loaded(m, ck);
  }
}

TEST_CASE("same-numel reshapes only when asked (1x1 conv -> Linear)", "[weights]") {
  auto ck = checkpoint();
  ck["fc.weight"] = ck["fc.weight"].view({3, 4, 1, 1});
  Tiny m;
  CHECK(contains(error_message([&] { moh::load_state_dict(*m, ck); }), "fc.weight: checkpoint [3, 4, 1, 1]"));
  moh::LoadOptions o;
  o.reshape_same_numel = true;
  moh::load_state_dict(*m, ck, o);
  check_loaded(m, checkpoint());
}

TEST_CASE("load_safetensors_into reads a file and names it in errors", "[weights]") {
  const auto dir = moh::test::temp_dir("weights_file");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& [k, v] : checkpoint()) tensors.emplace_back(k, v);
  const std::string path = dir + "/tiny.safetensors";
  moh::write_safetensors(path, tensors);
  Tiny m;
  moh::load_safetensors_into(*m, moh::SafetensorsFile(path));
  check_loaded(m, checkpoint());

  tensors.pop_back();  // drop one key
  const std::string partial = dir + "/partial.safetensors";
  moh::write_safetensors(partial, tensors);
  Tiny m2;
  const std::string msg = error_message([&] { moh::load_safetensors_into(*m2, moh::SafetensorsFile(partial)); });
  CHECK(contains(msg, partial));
  CHECK(contains(msg, "1 missing"));
}
