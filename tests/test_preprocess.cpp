// Tests of common/image/preprocess (the MoH-ViT evaluation transform): parity with every golden preproc_*.safetensors
// (uint8 intermediates exact, output within 1e-6), plus the torchvision/Pillow facts the transform rests on.
#include <string>

#include "parity/golden.h"
#include "parity/parity.h"
#include "common/image/preprocess.h"
#include "tests/catch_compat.h"
#include "tests/parity_assert.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

using moh::ImageU8;
using moh::test::contains;
using moh::test::error_message;

namespace {

ImageU8 noise_image(int w, int h, uint64_t seed) {
  ImageU8 im;
  im.width = w;
  im.height = h;
  im.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (auto& v : im.rgb) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    v = static_cast<uint8_t>(seed >> 56);
  }
  return im;
}

}  // namespace

TEST_CASE("eval transform matches every golden preproc file", "[preproc]") {
  const auto files = moh::test::data_glob("golden/preproc_*.safetensors");
  REQUIRE(!files.empty());
  for (const auto& path : files) {
    INFO(path);
    moh::GoldenFile g(path);
    REQUIRE(g.family() == "preproc");
    const auto checks = moh::run_preproc_parity(g);
    const auto names = moh::test::require_checks_pass(checks, path);
    const bool has_resized = names.count("mid.resized_u8") > 0, has_out = names.count("out.tensor") > 0;
    for (const auto& c : checks)
      if (c.ref.scalar_type() == torch::kUInt8) CHECK(c.tol.atol == 0.0);  // pixels must match exactly
    CHECK(has_resized);
    CHECK(has_out);
  }
}

TEST_CASE("torchvision size rules: shorter side, truncated long side, half-to-even crop offsets", "[preproc]") {
  // Facts from torchvision 0.14 (shared/golden/README.md 4.6 and spec/moh-vit.md 6).
  CHECK(moh::resize_shorter_side_size(500, 375, 256) == std::array<int, 2>{341, 256});  // int(256*500/375) = 341
  CHECK(moh::resize_shorter_side_size(333, 500, 256) == std::array<int, 2>{256, 384});
  CHECK(moh::resize_shorter_side_size(300, 300, 256) == std::array<int, 2>{256, 256});
  CHECK(moh::center_crop_offsets(341, 256, 224, 224) == std::array<int, 2>{16, 58});  // 117/2 = 58.5 -> 58
  CHECK(moh::center_crop_offsets(224, 257, 224, 224) == std::array<int, 2>{16, 0});   // 33/2 = 16.5 -> 16
  CHECK(moh::center_crop_offsets(224, 227, 224, 224) == std::array<int, 2>{2, 0});    // 1.5 -> 2
  CHECK(moh::center_crop_offsets(257, 224, 224, 224) == std::array<int, 2>{0, 16});   // 16.5 -> 16

  const auto p224 = moh::plan_vit_eval_transform(500, 375, 224);
  CHECK(p224.resize);
  CHECK(p224.crop);
  CHECK(p224.resized_w == 341);
  CHECK(p224.resized_h == 256);
  const auto p288 = moh::plan_vit_eval_transform(640, 480, 288);  // int(288 / (224/256)) = 329
  CHECK(p288.resized_h == 329);
  const auto p384 = moh::plan_vit_eval_transform(400, 300, 384);  // warp, no crop
  CHECK_FALSE(p384.crop);
  CHECK(p384.resized_w == 384);
  CHECK(p384.resized_h == 384);
  const auto p32 = moh::plan_vit_eval_transform(40, 30, 32);  // official: no resize at input_size <= 32
  CHECK_FALSE(p32.resize);
  CHECK(p32.out_w == 40);
}

TEST_CASE("Pillow facts: unchanged axes are not resampled; the result has the requested size", "[preproc]") {
  const ImageU8 im = noise_image(37, 21, 1);
  CHECK(moh::pil_resize_bicubic(im, 37, 21).rgb == im.rgb);
  // Only the vertical axis changes: every column is resampled independently, so a horizontally constant image stays
  // horizontally constant; rows of the output are resampled rows.
  ImageU8 stripes = noise_image(1, 21, 2);
  ImageU8 wide;
  wide.width = 9;
  wide.height = 21;
  for (int y = 0; y < 21; ++y)
    for (int x = 0; x < 9; ++x)
      for (int c = 0; c < 3; ++c) wide.rgb.push_back(stripes.rgb[y * 3 + c]);
  const ImageU8 tall = moh::pil_resize_bicubic(wide, 9, 50);
  REQUIRE(tall.height == 50);
  for (int y = 0; y < 50; ++y)
    for (int x = 1; x < 9; ++x)
      for (int c = 0; c < 3; ++c) REQUIRE(tall.rgb[(y * 9 + x) * 3 + c] == tall.rgb[(y * 9) * 3 + c]);
  for (auto [w, h] : {std::pair{1, 1}, {3000, 2}, {2, 3000}, {224, 224}}) {
    const ImageU8 r = moh::pil_resize_bicubic(im, w, h);
    CHECK(r.width == w);
    CHECK(r.height == h);
    CHECK(r.rgb.size() == static_cast<size_t>(w) * h * 3);
  }
  CHECK_THROWS_AS(moh::pil_resize_bicubic(im, 0, 5), moh::Error);
}

TEST_CASE("center_crop pads a too-small side with zeros like torchvision", "[preproc]") {
  const ImageU8 im = noise_image(3, 2, 3);
  // torchvision: crop 6x5 from 3x2 -> pad left (6-3)//2 = 1, top (5-2)//2 = 1; the image sits at x 1..3, y 1..2.
  const ImageU8 c = moh::center_crop(im, 6, 5);
  REQUIRE(c.width == 6);
  REQUIRE(c.height == 5);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        const bool inside = x >= 1 && x < 4 && y >= 1 && y < 3;
        const int expect = inside ? im.rgb[((y - 1) * 3 + (x - 1)) * 3 + ch] : 0;
        REQUIRE(c.rgb[(y * 6 + x) * 3 + ch] == expect);
      }
}

TEST_CASE("vit_eval_transform output: shape, dtype, normalisation constants", "[preproc]") {
  ImageU8 black;
  black.width = 300;
  black.height = 200;
  black.rgb.assign(300 * 200 * 3, 0);
  const auto t = moh::vit_eval_transform(black);
  REQUIRE(t.sizes() == torch::IntArrayRef({3, 224, 224}));
  CHECK(t.scalar_type() == torch::kFloat32);
  // Black -> -mean/std per channel (ImageNet constants).
  CHECK(std::abs(t[0][0][0].item<float>() - (-0.485 / 0.229)) < 1e-6);
  CHECK(std::abs(t[2][100][100].item<float>() - (-0.406 / 0.225)) < 1e-6);
  CHECK(moh::vit_eval_transform(noise_image(50, 1000, 4), 384).sizes() == torch::IntArrayRef({3, 384, 384}));
  CHECK(moh::vit_eval_transform(noise_image(1, 1, 5)).sizes() == torch::IntArrayRef({3, 224, 224}));
  CHECK(contains(error_message([] { moh::vit_eval_transform(ImageU8{}); }), "empty"));
}
