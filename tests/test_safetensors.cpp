// Tests of common/weights/safetensors_format + common/weights/safetensors: hostile files are rejected with a moh::Error that names
// the file, every dtype round-trips through write_safetensors, writes are atomic; plus the [fuzz] corpus replay
// (tests/fuzz/corpus/*, the libFuzzer seeds and any crashers found later, through parse_safetensors).
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/weights/safetensors.h"
#include "common/weights/safetensors_format.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using moh::test::contains;
using moh::test::error_message;

namespace {

// 8-byte little-endian header length + header text + data bytes.
std::string st_image(const std::string& header, const std::string& data, uint64_t declared_len = UINT64_MAX) {
  const uint64_t n = declared_len == UINT64_MAX ? header.size() : declared_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string write_bytes(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Opening the file must fail with a message naming the file and containing `what`.
void expect_rejected(const std::string& dir, const std::string& name, const std::string& bytes,
                     const std::string& what) {
  const std::string path = write_bytes(dir, name, bytes);
  const std::string msg = error_message([&] { moh::SafetensorsFile f(path); });
  INFO(name << ": " << msg);
  CHECK(contains(msg, path));
  CHECK(contains(msg, what));
}

const char* kOneF32 = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

TEST_CASE("a valid file opens and reads back", "[safetensors]") {
  const auto dir = moh::test::temp_dir("st_valid");
  float v[2] = {1.5f, -2.25f};
  const std::string path = write_bytes(dir, "ok.safetensors", st_image(kOneF32, std::string(reinterpret_cast<char*>(v), 8)));
  moh::SafetensorsFile f(path);
  REQUIRE(f.names() == std::vector<std::string>{"a"});
  auto t = f.tensor("a");
  CHECK(t.scalar_type() == torch::kFloat32);
  CHECK(t[0].item<float>() == 1.5f);
  CHECK(t[1].item<float>() == -2.25f);
  CHECK(contains(error_message([&] { f.tensor("b"); }), path));
}

TEST_CASE("corrupt safetensors files are rejected with the file name", "[safetensors]") {
  const auto dir = moh::test::temp_dir("st_corrupt");
  const std::string data8(8, '\x01');
  const std::string good = st_image(kOneF32, data8);

  expect_rejected(dir, "empty", "", "too short");
  expect_rejected(dir, "short", "\x05\x00\x00", "too short");
  expect_rejected(dir, "truncated_header", good.substr(0, 20), "truncated");
  expect_rejected(dir, "truncated_data", good.substr(0, good.size() - 3), "truncated");
  expect_rejected(dir, "huge_header_len", st_image(kOneF32, data8, 1ull << 40), "out of range");
  expect_rejected(dir, "header_len_past_end", st_image(kOneF32, data8, good.size()), "past the end");
  expect_rejected(dir, "bad_json", st_image(R"({"a":{"dtype":"F32",)", ""), "not valid JSON");
  expect_rejected(dir, "not_object", st_image(R"([1,2])", ""), "'{'");
  expect_rejected(dir, "unknown_dtype", st_image(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", data8),
                  "unsupported dtype 'Q4'");
  expect_rejected(dir, "span_outside",
                  st_image(R"({"a":{"dtype":"F32","shape":[256],"data_offsets":[0,1024]}})", data8), "outside");
  expect_rejected(dir, "begin_after_end",
                  st_image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", data8), "begin");
  expect_rejected(dir, "overlap",
                  st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           std::string(12, '\0')),
                  "overlap");
  expect_rejected(dir, "shape_vs_span", st_image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
                  "needs 12 bytes");
  expect_rejected(dir, "negative_dim", st_image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8),
                  "non-negative");
  expect_rejected(dir, "shape_overflow",
                  st_image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})",
                           data8),
                  "overflow");
  expect_rejected(dir, "metadata_not_string", st_image(R"({"__metadata__":{"k":1}})", ""), "not a string");
  expect_rejected(dir, "missing_offsets", st_image(R"({"a":{"dtype":"F32","shape":[2]}})", data8), "data_offsets");
  const std::string deep = R"({"__metadata__":{"k":"v"},"x":)" + std::string(200, '[') + std::string(200, ']') + "}";
  expect_rejected(dir, "deep_nesting", st_image(deep, ""), "nested too deeply");

  // The format's own rules (huggingface/safetensors): full coverage of the data section, unique names, int64 shapes.
  expect_rejected(dir, "hole_at_end", st_image(kOneF32, std::string(12, '\0')), "hole");
  expect_rejected(dir, "hole_in_middle",
                  st_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           std::string(12, '\0')),
                  "hole");
  expect_rejected(dir, "hole_at_start", st_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8),
                  "hole");
  expect_rejected(dir, "overlap_around_empty",
                  st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("e":{"dtype":"F32","shape":[0],"data_offsets":[6,6]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[6,14]}})",
                           std::string(14, '\0')),
                  "overlap");
  expect_rejected(dir, "overlap_after_empty",
                  st_image(R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                           R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           data8),
                  "overlap");
  expect_rejected(dir, "duplicate_name",
                  st_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           data8),
                  "more than once");
  expect_rejected(dir, "dim_2pow63",
                  st_image(R"({"a":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                           data8),
                  "2^63");
  expect_rejected(dir, "numel_over_int64",
                  st_image(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8),
                  "overflows");
  expect_rejected(dir, "bytes_over_int64",
                  st_image(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})", data8),
                  "overflows");

  // A directory is not a file.
  CHECK(contains(error_message([&] { moh::SafetensorsFile f(dir); }), dir));
  const std::string missing = dir + "/does_not_exist.safetensors";
  CHECK(contains(error_message([&] { moh::SafetensorsFile f(missing); }), missing));
}

TEST_CASE("empty tensors at the edges of the data section are valid", "[safetensors]") {
  const auto dir = moh::test::temp_dir("st_empty_edges");
  const std::string path = write_bytes(
      dir, "ok.safetensors",
      st_image(R"({"z0":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},)"
               R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("z1":{"dtype":"I64","shape":[4,0],"data_offsets":[8,8]}})",
               std::string(8, '\0')));
  moh::SafetensorsFile f(path);
  CHECK(f.names().size() == 3);
  CHECK(f.tensor("z1").sizes() == torch::IntArrayRef({4, 0}));
  CHECK(f.entry("z0").numel() == 0);
}

TEST_CASE("TensorEntry::numel is checked", "[safetensors]") {
  moh::TensorEntry e;
  e.name = "t";
  e.shape = {3, 0, int64_t(1) << 62, int64_t(1) << 62};
  CHECK(e.numel() == 0);
  e.shape = {int64_t(1) << 32, int64_t(1) << 32};
  CHECK(contains(error_message([&] { e.numel(); }), "overflows"));
}

TEST_CASE("every dtype round-trips through write_safetensors", "[safetensors]") {
  const auto dir = moh::test::temp_dir("st_roundtrip");
  torch::manual_seed(7);
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f64", torch::randn({3, 5}, torch::kFloat64)},
      {"f32", torch::randn({2, 3, 4})},
      {"f16", torch::randn({7}).to(torch::kFloat16)},
      {"bf16", torch::randn({4, 4}).to(torch::kBFloat16)},
      {"i64", torch::randint(-(1LL << 40), 1LL << 40, {6}, torch::kInt64)},
      {"i32", torch::randint(-100000, 100000, {2, 2}, torch::kInt32)},
      {"i16", torch::randint(-30000, 30000, {5}, torch::kInt16)},
      {"i8", torch::randint(-128, 127, {9}, torch::kInt8)},
      {"u8", torch::randint(0, 255, {3, 1, 2}, torch::kUInt8)},
      {"bool", torch::randint(0, 2, {10}, torch::kInt64).to(torch::kBool)},
      {"scalar", torch::tensor(3.5)},                      // 0-dim
      {"empty", torch::zeros({0, 3})},                     // zero elements
      {"strided", torch::arange(12.0).view({3, 4}).t()},   // non-contiguous input
  };
  const std::map<std::string, std::string> meta = {{"format", "test"}, {"note", "with \"quotes\" and \xc3\xa9"}};
  const std::string path = dir + "/all.safetensors";
  moh::write_safetensors(path, tensors, meta);

  moh::SafetensorsFile f(path);
  CHECK(f.metadata() == meta);
  REQUIRE(f.names().size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    auto back = f.tensor(name);
    CHECK(back.scalar_type() == t.scalar_type());
    CHECK(back.sizes() == t.sizes());
    CHECK(torch::equal(back, t.contiguous()));
  }
  // Header is padded to a multiple of 8 so that the data section is aligned.
  std::ifstream in(path, std::ios::binary);
  uint8_t len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  CHECK(n % 8 == 0);
}

TEST_CASE("write_safetensors is atomic", "[safetensors]") {
  const auto dir = moh::test::temp_dir("st_atomic");
  const std::string path = dir + "/model.safetensors";
  moh::write_safetensors(path, {{"w", torch::ones({2})}});

  // A failing write leaves the previous file untouched and no temporary behind.
  CHECK_THROWS_AS(moh::write_safetensors(path, {{"__metadata__", torch::ones({1})}}), moh::Error);
  CHECK_THROWS_AS(moh::write_safetensors(path, {{"c", torch::ones({2}, torch::kComplexFloat)}}), moh::Error);
  {
    moh::SafetensorsFile f(path);
    CHECK(torch::equal(f.tensor("w"), torch::ones({2})));
  }
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++files;
    CHECK(e.path().filename() == "model.safetensors");
  }
  CHECK(files == 1);

  // An unwritable target (parent is a regular file: fails even for root) -> error naming the path, nothing written.
  const std::string blocker = write_bytes(dir, "plainfile", "x");
  const std::string bad = blocker + "/out.safetensors";
  CHECK(contains(error_message([&] { moh::write_safetensors(bad, {{"w", torch::ones({2})}}); }), bad));
  CHECK_FALSE(fs::exists(bad));

  // Overwriting replaces the content.
  moh::write_safetensors(path, {{"v", torch::zeros({3})}});
  moh::SafetensorsFile f2(path);
  CHECK(f2.names() == std::vector<std::string>{"v"});
}

TEST_CASE("fuzz corpus replays through parse_safetensors without crashing", "[fuzz]") {
  const auto files = moh::test::data_glob("../fuzz/corpus/*");
  REQUIRE(files.size() >= 8);
  int valid = 0, rejected = 0;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO(path);
    // Seeds are named for what they are: valid_* must parse, bad_* must be rejected (found inputs: either).
    const std::string base = fs::path(path).filename().string();
    const bool want_valid = base.rfind("valid_", 0) == 0, want_bad = base.rfind("bad_", 0) == 0;
    try {
      const auto idx = moh::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
      CHECK_FALSE(want_bad);
      ++valid;
      // What the parser accepts is self-consistent: spans inside the data section, sizes match shapes.
      for (const auto& e : idx.tensors) {
        CHECK(e.end <= bytes.size() - idx.data_offset);
        CHECK(static_cast<uint64_t>(e.numel()) * moh::dtype_size(e.dtype) == e.end - e.begin);
      }
    } catch (const moh::Error& e) {
      CHECK_FALSE(want_valid);
      ++rejected;
      CHECK(contains(e.what(), path));
    }
  }
  CHECK(valid >= 2);
  CHECK(rejected >= 4);
}
