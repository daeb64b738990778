// [checkpoint] PyTorch checkpoints (common/weights/weights_file.h, torch_checkpoint.h, torch_pickle.h, zip_archive.h):
// every fixture written by scripts/make-torch-fixtures.py (Debian python3-torch) loads bit for bit equal to its
// safetensors twin; every hostile fixture is refused with a moh::Error naming the file and the problem; moh-convert
// reproduces the fixtures' weights exactly; models and apps load a .pth directly (written here by LibTorch's own
// torch.save-compatible pickler). Plus the [fuzz] replay of tests/fuzz/corpus_pickle through the unpickler.
#include <torch/script.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "parity/golden.h"
#include "common/image/image_io.h"
#include "common/weights/safetensors.h"
#include "common/io/sha256.h"
#include "common/weights/torch_pickle.h"
#include "common/weights/weights_file.h"
#include "common/weights/zip_archive.h"
#include "dit/config.h"
#include "dit/model.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"
#include "vit/config.h"
#include "vit/model.h"

using moh::test::contains;
using moh::test::error_message;

namespace {

std::string ckpt(const std::string& name) { return moh::test::data_path("torch_ckpt/" + name); }

bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  if (a.numel() == 0) return true;  // empty tensors may have no storage: memcmp(nullptr, ...) is undefined
  auto ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

// Every tensor of `file` equals the twin's tensor of the same name, bit for bit, and the name sets agree.
void check_against_twin(const moh::WeightsFile& file, const std::string& twin_path) {
  moh::SafetensorsFile twin(twin_path);
  auto names = file.names();
  auto expected = twin.names();
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  CHECK(names == expected);
  for (const auto& n : twin.names()) {
    INFO(file.path() << ": " << n);
    REQUIRE(file.contains(n));
    const auto t = file.tensor(n);
    CHECK(file.dtype(n) == t.scalar_type());
    CHECK(file.shape(n) == t.sizes().vec());
    CHECK(same_bits(t, twin.tensor(n)));
  }
}

std::string read_all(const std::string& path) { return moh::test::read_file(path); }

struct Good {
  const char* file;
  const char* key;       // --key ("" = automatic)
  const char* key_used;  // what the reader reports
  const char* twin;
};
const Good kGood[] = {
    {"bare.pth", "", "", "bare.pth.expected.safetensors"},
    {"train_vit.pth", "", "model", "train_vit.pth.expected.safetensors"},
    {"train_dit.pt", "", "ema", "train_dit.pt.expected.safetensors"},
    {"train_dit.pt", "model", "model", "train_dit.pt.model.expected.safetensors"},
    {"ddp.pth", "", "model", "ddp.pth.expected.safetensors"},
    {"compiled.pth", "", "", "compiled.pth.expected.safetensors"},
    {"ddp_compiled.pth", "", "", "ddp_compiled.pth.expected.safetensors"},
    {"dtypes.pth", "", "state_dict", "dtypes.pth.expected.safetensors"},
    {"views.pth", "", "", "views.pth.expected.safetensors"},
    {"deflated.pth", "", "", "deflated.pth.expected.safetensors"},
    {"hand_valid.pth", "", "", "hand_valid.pth.expected.safetensors"},
};

struct Bad {
  const char* file;
  const char* problem;  // must appear in the message (the file name must too)
};
const Bad kBad[] = {
    {"bad_truncated.pth", "no end-of-central-directory record"},
    {"bad_central_dir.pth", "bad signature"},
    {"bad_cd_offset.pth", "lies outside the file"},
    {"bad_missing_storage.pth", "is missing from the archive"},
    {"bad_truncated_storage.pth", "the file is truncated or corrupt"},
    {"bad_view_past_storage.pth", "runs past its storage"},
    {"bad_shape_overflow.pth", "shape overflows"},
    {"bad_negative_stride.pth", "negative entry -1"},
    {"bad_memo.pth", "memo reference 7 points to nothing"},
    {"bad_deep_nesting.pth", "nested more than 200 levels"},
    {"bad_os_system.pth", "global 'os.system', which is not on the allow-list"},
    {"bad_eval.pth", "global 'builtins.eval'"},
    {"bad_exec_stack_global.pth", "global 'builtins.exec'"},
    {"bad_no_pickle.pth", "data.pkl"},
    {"bad_legacy.pth", "legacy PyTorch checkpoint"},
    {"bad_whole_module.pth", "torch.nn.modules.linear.Linear"},
};

}  // namespace

TEST_CASE("PyTorch fixtures load bit for bit equal to their safetensors twins", "[checkpoint]") {
  for (const auto& g : kGood) {
    INFO(g.file << " --key '" << g.key << "'");
    moh::WeightsFile file(ckpt(g.file), g.key);
    CHECK(file.format() == moh::WeightsFormat::TorchZip);
    CHECK(file.key_used() == g.key_used);
    CHECK(file.metadata().empty());
    check_against_twin(file, ckpt(g.twin));
  }
}

TEST_CASE("Training dicts: args and layout are reported; the storages are mapped, not copied", "[checkpoint]") {
  moh::WeightsFile vit(ckpt("train_vit.pth"));
  CHECK(contains(vit.description(), "entry 'model'"));
  CHECK(contains(vit.args_json(), "\"__class__\":\"argparse.Namespace\""));
  CHECK(contains(vit.args_json(), "\"model\":\"moh_transnext_small_80\""));
  CHECK(contains(vit.args_json(), "\"betas\":[0.9,0.999]"));

  // Views of one shared storage point into the same mapping at their element offsets.
  moh::WeightsFile views(ckpt("views.pth"));
  const auto base = views.tensor("base"), slice = views.tensor("slice"), col = views.tensor("column");
  CHECK(static_cast<const char*>(slice.data_ptr()) == static_cast<const char*>(base.data_ptr()) + 8 * 4);
  CHECK(static_cast<const char*>(col.data_ptr()) == static_cast<const char*>(base.data_ptr()) + 1 * 4);
  CHECK(col.strides().vec() == std::vector<int64_t>{8});
  // A view outlives its file object and may be written to (privately: the file is unchanged).
  torch::Tensor kept;
  {
    moh::WeightsFile again(ckpt("views.pth"));
    kept = again.tensor("slice");
  }
  kept.add_(1);
  CHECK(kept[0][0].item<float>() == 5.0f);  // base[8] = 4.0, plus one
  CHECK(moh::WeightsFile(ckpt("views.pth")).tensor("slice")[0][0].item<float>() == 4.0f);
}

TEST_CASE("Hostile checkpoints are refused with an error naming the file and the problem", "[checkpoint]") {
  for (const auto& b : kBad) {
    const std::string path = ckpt(b.file);
    INFO(path);
    const std::string msg = error_message([&] { moh::WeightsFile f(path); });
    INFO(msg);
    CHECK(contains(msg, path));
    CHECK(contains(msg, b.problem));
  }
  // Wrong --key: the message lists what is there.
  const std::string msg = error_message([] { moh::WeightsFile f(ckpt("train_dit.pt"), "weights"); });
  CHECK(contains(msg, "no top-level entry 'weights'"));
  CHECK(contains(msg, "model, ema, opt, args"));
  CHECK(contains(error_message([] { moh::WeightsFile f(ckpt("train_dit.pt"), "args"); }), "not a dict of tensors"));
  CHECK(contains(error_message([] { moh::WeightsFile f(ckpt("bare.pth.expected.safetensors"), "model"); }),
                 "applies only to PyTorch checkpoints"));
  // Neither format.
  const auto dir = moh::test::temp_dir("ckpt_bad");
  std::ofstream(dir + "/text.pth") << "just some text that is not a checkpoint";
  CHECK(contains(error_message([&] { moh::WeightsFile f(dir + "/text.pth"); }), "neither safetensors nor"));
}

TEST_CASE("Every cut of a checkpoint is refused or read, never a crash", "[checkpoint]") {
  const std::string bytes = read_all(ckpt("train_dit.pt"));
  const auto dir = moh::test::temp_dir("ckpt_cut");
  int refused = 0;
  for (size_t cut = 0; cut < bytes.size(); cut += 97) {
    const std::string p = dir + "/cut.pt";
    std::ofstream(p, std::ios::binary) << bytes.substr(0, cut);
    try {
      moh::WeightsFile f(p);
    } catch (const moh::Error& e) {
      ++refused;
      CHECK(contains(e.what(), p));
    }
  }
  CHECK(refused == static_cast<int>((bytes.size() + 96) / 97));
}

TEST_CASE("moh-convert reproduces every fixture's weights exactly and records where they came from", "[checkpoint]") {
  const auto app = moh::test::bin_path("moh-convert");
  const auto dir = moh::test::temp_dir("convert");
  for (const auto& g : kGood) {
    INFO(g.file);
    const std::string out = dir + "/" + g.file + ".safetensors";
    std::string log;
    const std::string key = *g.key ? std::string(" --key ") + g.key : "";
    REQUIRE(moh::test::run_command(app + " " + ckpt(g.file) + " " + out + key, &log) == 0);
    INFO(log);
    moh::WeightsFile converted(out);
    check_against_twin(converted, ckpt(g.twin));
    CHECK(converted.meta("source_sha256") == moh::sha256_file(ckpt(g.file)));
    CHECK(converted.meta("source") == g.file);
    CHECK(converted.meta("source_key") == (*g.key_used ? g.key_used : "(top-level dict)"));
  }
  // Training args and --model land in the metadata.
  const std::string out = dir + "/dit.safetensors";
  REQUIRE(moh::test::run_command(app + " " + ckpt("train_dit.pt") + " " + out + " --model MoH-DiT-S/2-90") == 0);
  moh::SafetensorsFile dit(out);
  CHECK(contains(dit.meta("training_args"), "\"model\":\"DiT-XL/2\""));
  CHECK(dit.meta("kind") == "dit");
  CHECK(dit.meta("format") == "moh-model-v1");
  CHECK(moh::dit::DiTConfig::from_json(nlohmann::json::parse(dit.meta("config"))).name == "MoH-DiT-S/2-90");

  // --dtype casts floating tensors only.
  const std::string half = dir + "/half.safetensors";
  REQUIRE(moh::test::run_command(app + " " + ckpt("dtypes.pth") + " " + half + " --dtype fp16") == 0);
  moh::SafetensorsFile h(half), twin(ckpt("dtypes.pth.expected.safetensors"));
  CHECK(same_bits(h.tensor("bf16"), twin.tensor("bf16").to(torch::kFloat16)));
  CHECK(same_bits(h.tensor("f64"), twin.tensor("f64").to(torch::kFloat16)));
  CHECK(same_bits(h.tensor("i64"), twin.tensor("i64")));
  CHECK(same_bits(h.tensor("flags"), twin.tensor("flags")));

  // Hostile input: exit 1, one clear message, no output file.
  std::string log;
  const std::string never = dir + "/never.safetensors";
  CHECK(moh::test::run_command(app + " " + ckpt("bad_os_system.pth") + " " + never, &log) == 1);
  CHECK(contains(log, "moh-convert: error:"));
  CHECK(contains(log, "os.system"));
  CHECK(!std::ifstream(never).good());
  CHECK(moh::test::run_command(app + " " + ckpt("bare.pth") + " " + never + " --dtype fp8", &log) == 1);
  CHECK(contains(log, "--dtype: dtype must be"));
}

TEST_CASE("Models load a .pth directly: LibTorch-written training dicts, ema picked for DiT", "[checkpoint]") {
  const auto dir = moh::test::temp_dir("ckpt_models");
  auto save_pth = [](const std::string& path, const std::vector<std::pair<std::string, std::map<std::string, torch::Tensor>>>& parts) {
    c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
    for (const auto& [key, tensors] : parts) {
      c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
      for (const auto& [n, t] : tensors) d.insert(n, t);
      root.insert(key, d);
    }
    root.insert("epoch", int64_t(3));
    const std::vector<char> bytes = torch::jit::pickle_save(root);
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };

  // MoH-ViT: {"model": weights, "epoch"} -> the classifier's weights equal the golden ones.
  const auto vit_files = moh::test::data_glob("golden/vit_model*.safetensors");
  REQUIRE(!vit_files.empty());
  moh::GoldenFile gv(vit_files.front());
  const auto vit_cfg = moh::vit::vit_config_from_json(gv.config().at("model"));
  const auto vit_weights = gv.weights();
  const std::string vit_pth = dir + "/vit.pth";
  save_pth(vit_pth, {{"model", vit_weights}});
  auto vit = moh::vit::build_vit(vit_cfg, vit_pth, torch::kCPU, torch::kFloat32);
  for (const auto& [n, t] : moh::state_dict(*vit))
    if (vit_weights.count(n)) {
      INFO(n);
      CHECK(same_bits(t, vit_weights.at(n)));
    }

  // moh-classify --weights X.pth gives the same output as with the safetensors file.
  const std::string cfg_json = dir + "/vit.json";
  moh::vit::save_vit_config(vit_cfg, cfg_json);
  const std::string vit_st = dir + "/vit.safetensors";
  std::vector<std::pair<std::string, torch::Tensor>> w(vit_weights.begin(), vit_weights.end());
  moh::write_safetensors(vit_st, w);
  moh::ImageU8 img;
  img.width = 40;
  img.height = 30;
  img.rgb.resize(40 * 30 * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>((i * 37) % 251);
  const std::string png = dir + "/img.png";
  moh::encode_png(png, img);
  const std::string base = moh::test::bin_path("moh-classify") + " --model " + cfg_json + " --device cpu --topk 3 ";
  std::string from_pth, from_st;
  CHECK(moh::test::run_command(base + "--weights " + vit_pth + " " + png, &from_pth) == 0);
  CHECK(moh::test::run_command(base + "--weights " + vit_st + " " + png, &from_st) == 0);
  INFO(from_pth);
  CHECK(from_pth == from_st);
  CHECK(contains(from_pth, png));

  // MoH-DiT: {"model": zeros, "ema": weights} -> load_dit_weights takes the ema.
  moh::GoldenFile gd(moh::test::data_path("golden/dit_model.safetensors"));
  const auto dit_cfg = moh::dit::DiTConfig::from_json(gd.config().at("model"));
  const auto dit_weights = gd.weights();
  std::map<std::string, torch::Tensor> zeros;
  for (const auto& [n, t] : dit_weights) zeros[n] = torch::zeros_like(t);
  const std::string dit_pt = dir + "/dit.pt";
  save_pth(dit_pt, {{"model", zeros}, {"ema", dit_weights}});
  moh::dit::DiT dit(dit_cfg);
  moh::dit::load_dit_weights(dit, dit_pt);
  for (const auto& [n, t] : moh::state_dict(*dit))
    if (dit_weights.count(n)) {
      INFO(n);
      CHECK(same_bits(t, dit_weights.at(n)));
    }
}

TEST_CASE("sha256 matches known digests", "[checkpoint]") {
  moh::Sha256 empty;
  CHECK(empty.hex_digest() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  moh::Sha256 abc;
  abc.update("abc", 3);
  CHECK(abc.hex_digest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  moh::Sha256 million;
  const std::string a(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(a.data(), a.size());
  CHECK(million.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("pickle fuzz corpus replays through the unpickler and zip reader without crashing", "[fuzz][checkpoint]") {
  const auto files = moh::test::data_glob("../fuzz/corpus_pickle/*");
  REQUIRE(files.size() >= 8);
  int ok = 0, refused = 0;
  for (const auto& path : files) {
    const std::string bytes = read_all(path);
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    INFO(path);
    try {
      const auto pk = moh::pickle::unpickle(p, bytes.size(), path);
      REQUIRE(pk.root != nullptr);
      for (const auto& t : pk.tensors) CHECK(t.storage < pk.storages.size());
      (void)moh::pickle::to_json(*pk.root);
      ++ok;
    } catch (const moh::Error& e) {
      ++refused;
      CHECK(contains(e.what(), path));
    }
    try {
      moh::ZipArchive z(p, bytes.size(), path);
    } catch (const moh::Error& e) {
      CHECK(contains(e.what(), path));
    }
  }
  CHECK(ok >= 5);
  CHECK(refused >= 3);
}
