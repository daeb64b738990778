// Class-name resolution shared by every app and model: a query (index, name, or for ImageNet models a wnid or
// ImageNet name) -> class index, with a close-match hint when unknown ("no class 'Trowser'; did you mean
// 'Trouser'?"). Model-provided names (the demo models' Fashion-MNIST classes) and the ImageNet table alike.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moh {

// Levenshtein distance (insertions, deletions, substitutions of single bytes).
size_t edit_distance(const std::string& a, const std::string& b);

// names: the model's class names (may be empty). num_classes: the model's class count. An all-digit query is an
// index; otherwise a case-insensitive name; for a 1000-class model without names, the ImageNet resolver
// (common/datasets/imagenet.h) decides. Throws moh::Error naming the query, the model's classes and the closest name.
int64_t resolve_class(const std::string& query, const std::vector<std::string>& names, int64_t num_classes);

// "name" for named classes, the ImageNet name for unnamed 1000-class models, else "".
std::string class_display_name(int64_t index, const std::vector<std::string>& names, int64_t num_classes);

}  // namespace moh
