// Class-name resolution with close-match hints (see class_names.h).
#include "common/datasets/class_names.h"

#include <algorithm>
#include <cctype>

#include "common/error.h"
#include "common/datasets/imagenet.h"

namespace moh {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

int64_t resolve_class(const std::string& query, const std::vector<std::string>& names, int64_t num_classes) {
  if (names.empty() && num_classes == 1000) return resolve_imagenet_class(query);  // index, wnid or name
  if (all_digits(query)) {
    const auto first = query.find_first_not_of('0');
    const std::string digits = first == std::string::npos ? "0" : query.substr(first);
    MOH_CHECK(digits.size() <= 12 && std::stoll(digits) < num_classes, "class ", query,
              " is out of range: the model has ", num_classes, " classes (0..", num_classes - 1, ")");
    return std::stoll(digits);
  }
  MOH_CHECK(!names.empty(), "class '", query, "': the model's ", num_classes,
            " classes have no names; give an index 0..", num_classes - 1);
  const std::string q = lower(query);
  for (size_t i = 0; i < names.size(); ++i)
    if (lower(names[i]) == q) return static_cast<int64_t>(i);
  size_t best = 0;
  for (size_t i = 1; i < names.size(); ++i)
    if (edit_distance(q, lower(names[i])) < edit_distance(q, lower(names[best]))) best = i;
  std::string all;
  for (size_t i = 0; i < names.size() && i < 30; ++i) all += (i ? ", " : "") + names[i];
  throw Error("no class '" + query + "'; did you mean '" + names[best] + "'? (classes: " + all +
              (names.size() > 30 ? ", ..." : "") + "; or an index 0.." + std::to_string(num_classes - 1) + ")");
}

std::string class_display_name(int64_t index, const std::vector<std::string>& names, int64_t num_classes) {
  if (index >= 0 && index < static_cast<int64_t>(names.size())) return names[size_t(index)];
  if (names.empty() && num_classes == 1000 && index >= 0 && index < 1000) return imagenet_classes()[size_t(index)].name;
  return "";
}

}  // namespace moh
