// classify_one: the smallest program built on the installed toolkit (find_package(moh), moh::vit): opens a
// self-describing weights file with moh::vit::Classifier and prints the top-3 classes of one picture.
// Usage: classify_one WEIGHTS IMAGE
#include <cstdio>
#include <exception>

#include "common/image/image_io.h"
#include "vit/classifier.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s WEIGHTS IMAGE\n", argv[0]);
    return 2;
  }
  try {
    moh::vit::ClassifierOptions options;
    options.weights = argv[1];
    moh::vit::Classifier classifier(options);
    const auto input = classifier.preprocess(moh::decode_image_file(argv[2]));  // [C, S, S]
    const auto logits = classifier.logits(input.unsqueeze(0));                   // [1, classes]
    const auto top = classifier.top_k(logits, 3);  // one list per batch row
    for (const auto& p : top[0])
      std::printf("%lld %s %.4f\n", (long long)p.index, p.label.c_str(), p.probability);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify_one: %s\n", e.what());
    return 1;
  }
}
