// ImageNet-1k class table (index order of timm's imagenet_synsets.txt) and class lookups by index, wnid or name.
// The table is embedded from common/datasets/imagenet_classes.inc (generated from common/datasets/data/imagenet_classes.tsv).
#include "common/datasets/imagenet.h"

#include "common/datasets/class_names.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"

namespace moh {
namespace {

#include "common/datasets/imagenet_classes.inc"

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Lower case, '_' and '-' as spaces, runs of spaces collapsed: "Golden_Retriever" == "golden retriever".
std::string normalize(const std::string& s) {
  std::string out;
  for (char c : trim(s)) {
    c = (c == '_' || c == '-') ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<ImageNetClass> parse_table() {
  std::string text;
  for (const char* chunk : kImageNetClassesTsv) text += chunk;
  std::vector<ImageNetClass> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    MOH_CHECK(t1 != std::string::npos && t2 != std::string::npos, "embedded ImageNet table: bad line '", line, "'");
    ImageNetClass c;
    c.index = std::stoi(line.substr(0, t1));
    c.wnid = line.substr(t1 + 1, t2 - t1 - 1);
    std::istringstream lemmas(line.substr(t2 + 1));
    std::string lemma;
    while (std::getline(lemmas, lemma, ',')) {
      lemma = trim(lemma);
      if (!lemma.empty()) c.lemmas.push_back(lemma);
    }
    MOH_CHECK(!c.lemmas.empty(), "embedded ImageNet table: class ", c.index, " has no name");
    c.name = c.lemmas.front();
    MOH_CHECK(c.index == static_cast<int>(out.size()), "embedded ImageNet table: index ", c.index, " out of order");
    out.push_back(std::move(c));
  }
  MOH_CHECK(out.size() == 1000, "embedded ImageNet table has ", out.size(), " classes, expected 1000");
  return out;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool looks_like_wnid(const std::string& s) {
  return s.size() == 9 && (s[0] == 'n' || s[0] == 'N') && all_digits(s.substr(1));
}

std::string describe(const std::vector<int>& classes) {
  std::ostringstream os;
  for (size_t i = 0; i < classes.size(); ++i) os << (i ? ", " : "") << imagenet_label(classes[i]);
  return os.str();
}

}  // namespace

const std::vector<ImageNetClass>& imagenet_classes() {
  static const std::vector<ImageNetClass> table = parse_table();
  return table;
}

std::string imagenet_label(int index) {
  const auto& t = imagenet_classes();
  MOH_CHECK(index >= 0 && index < static_cast<int>(t.size()), "ImageNet class index ", index, " is out of range 0..",
            t.size() - 1);
  return std::to_string(index) + " " + t[index].name + " (" + t[index].wnid + ")";
}

int resolve_imagenet_class(const std::string& query) {
  const auto& t = imagenet_classes();
  const std::string q = trim(query);
  MOH_CHECK(!q.empty(), "empty ImageNet class: give an index (0..999), a wnid (n02099601) or a name (golden retriever)");
  if (all_digits(q)) {
    MOH_CHECK(q.size() <= 4 && std::stoi(q) < static_cast<int>(t.size()), "ImageNet class index ", q,
              " is out of range 0..", t.size() - 1);
    return std::stoi(q);
  }
  if (looks_like_wnid(q)) {
    std::string w = q;
    w[0] = 'n';
    for (const auto& c : t)
      if (c.wnid == w) return c.index;
    throw Error("'" + q + "' is not an ImageNet-1k wnid (the 1000 classes are listed in common/datasets/data/imagenet_classes.tsv)");
  }

  // Names: an exact (case-sensitive) lemma first, so "Cardigan" (the corgi) and "cardigan" (the sweater) differ;
  // then case/punctuation-insensitive; a lemma shared by several classes resolves to the class it names first.
  auto matches = [&](auto&& same) {
    std::vector<int> all, first;
    for (const auto& c : t)
      for (size_t i = 0; i < c.lemmas.size(); ++i)
        if (same(c.lemmas[i])) {
          all.push_back(c.index);
          if (i == 0) first.push_back(c.index);
          break;
        }
    return std::make_pair(all, first);
  };
  const std::string nq = normalize(q);
  for (const auto& [all, first] : {matches([&](const std::string& l) { return l == q; }),
                                    matches([&](const std::string& l) { return normalize(l) == nq; })}) {
    if (all.size() == 1) return all[0];
    if (first.size() == 1) return first[0];
    if (!all.empty())
      throw Error("ImageNet class name '" + q + "' is ambiguous: it names " + describe(first.empty() ? all : first) +
                  "; give the index or the wnid instead");
  }

  // Unknown: suggest the 3 classes with the closest lemma.
  std::vector<std::pair<size_t, int>> scored;  // (distance, class)
  for (const auto& c : t) {
    size_t best = std::string::npos;
    for (const auto& l : c.lemmas) best = std::min(best, edit_distance(nq, normalize(l)));
    scored.emplace_back(best, c.index);
  }
  std::partial_sort(scored.begin(), scored.begin() + 3, scored.end());
  throw Error("unknown ImageNet class '" + q + "'; closest names: " +
              describe({scored[0].second, scored[1].second, scored[2].second}) +
              " (give a name, an index 0..999 or a wnid like n02099601)");
}

}  // namespace moh
