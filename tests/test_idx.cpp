// IDX / Fashion-MNIST reader (common/datasets/idx.h): round trips of plain and gzip files, and a clear moh::Error for every
// kind of damaged file (bad magic, wrong type, truncated header or data, trailing bytes, cut gzip stream,
// images/labels disagreeing, missing files).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/datasets/idx.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

namespace {

std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

torch::Tensor random_images(int64_t n, int64_t h, int64_t w) {
  return torch::randint(0, 256, {n, h, w}, torch::kLong).to(torch::kUInt8);
}

}  // namespace

TEST_CASE("IDX round trip, plain and gzip", "[apps]") {
  torch::manual_seed(3);
  const auto dir = moh::test::temp_dir("idx");
  for (bool gz : {false, true}) {
    auto t = random_images(7, 5, 3);  // odd sizes: no accidental square/row-major confusion
    const std::string p = dir + (gz ? "/a.idx.gz" : "/a.idx");
    moh::write_idx(p, t, gz);
    auto bytes = read_bytes(p);
    if (gz) CHECK((bytes.size() > 2 && bytes[0] == 0x1f && bytes[1] == 0x8b));  // really gzip framed
    else CHECK(bytes.size() == size_t(4 + 3 * 4 + t.numel()));
    auto a = moh::read_idx(p);
    CHECK(a.dims == std::vector<int64_t>{7, 5, 3});
    CHECK(torch::equal(moh::idx_to_tensor(a), t));
  }
}

TEST_CASE("IDX reader rejects damaged files with a clear error", "[apps]") {
  using moh::test::contains;
  using moh::test::error_message;
  const auto dir = moh::test::temp_dir("idxbad");
  auto t = random_images(4, 6, 6);
  const std::string good = dir + "/good.idx";
  moh::write_idx(good, t, false);
  const auto bytes = read_bytes(good);
  auto variant = [&](const std::string& name, std::vector<uint8_t> b) {
    const std::string p = dir + "/" + name;
    write_bytes(p, b);
    return p;
  };

  auto bad_magic = bytes;
  bad_magic[0] = 0x42;
  auto msg = error_message([&] { moh::read_idx(variant("magic.idx", bad_magic)); });
  CHECK(contains(msg, "magic"));
  CHECK(contains(msg, "magic.idx"));

  auto bad_type = bytes;
  bad_type[2] = 0x0D;  // float
  CHECK(contains(error_message([&] { moh::read_idx(variant("type.idx", bad_type)); }), "type"));

  CHECK(contains(error_message([&] { moh::read_idx(variant("short.idx", {0, 0, 8})); }), "too short"));
  CHECK(contains(error_message([&] { moh::read_idx(variant("hdr.idx", {0, 0, 8, 3, 0, 0, 0, 4})); }), "header"));

  auto cut = bytes;
  cut.resize(bytes.size() - 5);
  msg = error_message([&] { moh::read_idx(variant("cut.idx", cut)); });
  CHECK(contains(msg, "truncated"));

  auto extra = bytes;
  extra.push_back(1);
  CHECK(contains(error_message([&] { moh::read_idx(variant("extra.idx", extra)); }), "trailing"));

  auto zero_dim = bytes;
  zero_dim[4] = zero_dim[5] = zero_dim[6] = zero_dim[7] = 0;
  CHECK(contains(error_message([&] { moh::read_idx(variant("zero.idx", zero_dim)); }), "invalid size"));

  // A gzip stream cut in the middle: zlib reports it, or the IDX size check catches the short payload.
  const std::string gz = dir + "/good.idx.gz";
  moh::write_idx(gz, random_images(50, 28, 28), true);
  auto gzb = read_bytes(gz);
  gzb.resize(gzb.size() / 2);
  msg = error_message([&] { moh::read_idx(variant("cut.idx.gz", gzb)); });
  CHECK((contains(msg, "truncated") || contains(msg, "corrupt")));
  CHECK(contains(msg, "cut.idx.gz"));

  CHECK(contains(error_message([&] { moh::read_idx(dir + "/nope.idx"); }), "does not exist"));
}

TEST_CASE("Fashion-MNIST folder loader checks names, shapes and counts", "[apps]") {
  using moh::test::contains;
  using moh::test::error_message;
  torch::manual_seed(4);
  const auto dir = moh::test::temp_dir("fmnist");
  auto imgs = random_images(12, 28, 28);
  auto labels = torch::randint(0, 10, {12}, torch::kLong).to(torch::kUInt8);
  moh::write_idx(dir + "/t10k-images-idx3-ubyte.gz", imgs, true);
  moh::write_idx(dir + "/t10k-labels-idx1-ubyte", labels, false);  // plain files are accepted too
  auto s = moh::load_fashion_mnist(dir, "test");
  CHECK(torch::equal(s.images, imgs));
  CHECK(torch::equal(s.labels, labels.to(torch::kLong)));
  CHECK(moh::fashion_mnist_class_names().size() == 10);
  CHECK(moh::fashion_mnist_class_names()[9] == "Ankle boot");

  CHECK(contains(error_message([&] { moh::load_fashion_mnist(dir, "train"); }), "train-images-idx3-ubyte"));
  CHECK(contains(error_message([&] { moh::load_fashion_mnist(dir, "validation"); }), "split"));

  moh::write_idx(dir + "/t10k-labels-idx1-ubyte", labels.narrow(0, 0, 11), false);
  CHECK(contains(error_message([&] { moh::load_fashion_mnist(dir, "t10k"); }), "12 images"));
  auto bad = labels.clone();
  bad[3] = 10;
  moh::write_idx(dir + "/t10k-labels-idx1-ubyte", bad, false);
  CHECK(contains(error_message([&] { moh::load_fashion_mnist(dir, "t10k"); }), "label 10"));
  moh::write_idx(dir + "/t10k-labels-idx1-ubyte", labels.view({3, 4}), false);
  CHECK(contains(error_message([&] { moh::load_fashion_mnist(dir, "t10k"); }), "idx1"));
}

TEST_CASE("The installed Fashion-MNIST test split reads with the documented sizes", "[apps]") {
  const std::string dir = moh::default_fashion_mnist_dir();
  if (!MOH_NEED(!dir.empty(), "dataset-fashion-mnist is not installed (scripts/setup-deps.sh installs it)")) return;
  auto s = moh::load_fashion_mnist(dir, "test");
  CHECK(s.images.sizes() == torch::IntArrayRef({10000, 28, 28}));  // the dataset's published sizes
  CHECK(s.labels.size(0) == 10000);
  // Balanced classes: 1000 test images per class (published).
  auto counts = torch::bincount(s.labels);
  CHECK(counts.min().item<int64_t>() == 1000);
  CHECK(counts.max().item<int64_t>() == 1000);
}
