// IDX file reader (the MNIST / Fashion-MNIST container format: zero magic bytes, a type code, a dimension count,
// big-endian int32 sizes, then raw row-major data), gzip-compressed or plain, plus the Fashion-MNIST dataset
// layout (zalandoresearch/fashion-mnist utils/mnist_reader.py `load_mnist`: `<kind>-images-idx3-ubyte.gz`,
// `<kind>-labels-idx1-ubyte.gz`, kind = "train" or "t10k"). Every malformed input (bad magic, unsupported type,
// truncated data, trailing bytes, images/labels count mismatch) throws moh::Error naming the file.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace moh {

// One IDX array. Only the unsigned-byte type (0x08) is supported: it is the only one the MNIST family uses.
struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28} for idx3 images, {60000} for idx1 labels
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
};

// Reads `path` (gzip or plain: zlib detects the gzip header). Throws moh::Error on any malformed content.
IdxArray read_idx(const std::string& path);
// Parses an already-decompressed IDX byte buffer (`source` names it in error messages).
IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& source);
// The array as a uint8 tensor of shape dims (owns a copy).
torch::Tensor idx_to_tensor(const IdxArray& a);

// Writes a uint8 tensor (any shape, 1..255 dims) as IDX; gzip-compressed when `gzip` (the path is used as given).
// Atomic: a failure leaves no partial file.
void write_idx(const std::string& path, const torch::Tensor& u8, bool gzip);

struct FashionMnistSplit {
  torch::Tensor images;  // [N, 28, 28] uint8, 0 = background
  torch::Tensor labels;  // [N] int64 in [0, 10)
};

// Loads split "train" or "test" (alias "t10k") from `dir`, accepting `<kind>-images-idx3-ubyte[.gz]` and
// `<kind>-labels-idx1-ubyte[.gz]`. Checks shapes ([N, H, W] images, [N] labels), equal N and labels < 10.
FashionMnistSplit load_fashion_mnist(const std::string& dir, const std::string& split);

// "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot".
const std::vector<std::string>& fashion_mnist_class_names();

// The Debian `dataset-fashion-mnist` folder when it exists, else "" (callers then require --data).
std::string default_fashion_mnist_dir();

}  // namespace moh
