// Generation/classifier agreement per requested class (vit/agreement.h).
#include "vit/agreement.h"

#include <cctype>
#include <filesystem>
#include <map>

namespace moh::vit {
namespace fs = std::filesystem;

int64_t requested_class_from_filename(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  // NNNNNN_<digits>[_...].png
  const auto u1 = name.find('_');
  if (u1 == std::string::npos || u1 == 0) return -1;
  for (size_t i = 0; i < u1; ++i)
    if (!std::isdigit((unsigned char)name[i])) return -1;
  size_t j = u1 + 1;
  while (j < name.size() && std::isdigit((unsigned char)name[j])) ++j;
  if (j == u1 + 1 || j - u1 - 1 > 12 || j >= name.size() || (name[j] != '_' && name[j] != '.')) return -1;
  return std::stoll(name.substr(u1 + 1, j - u1 - 1));
}

Agreement agreement_by_class(const std::vector<ClassifyResult>& results, const Classifier& clf) {
  std::map<int64_t, AgreementRow> rows;
  std::map<int64_t, std::map<int64_t, int64_t>> predicted;  // requested -> predicted -> count
  Agreement a;
  for (const auto& r : results) {
    if (!r.ok || r.top.empty()) continue;
    const int64_t req = requested_class_from_filename(r.path);
    if (req < 0) {
      ++a.unnamed;
      continue;
    }
    auto& row = rows[req];
    row.requested = req;
    row.name = clf.label(req);
    row.images++;
    const bool ok = r.top.front().index == req;
    row.agreed += ok;
    predicted[req][r.top.front().index]++;
    a.images++;
    a.agreed += ok;
  }
  for (auto& [req, row] : rows) {
    int64_t best = -1, best_n = -1;
    for (const auto& [cls, n] : predicted[req])
      if (n > best_n) best = cls, best_n = n;
    row.most_predicted = best;
    a.rows.push_back(row);
  }
  return a;
}

}  // namespace moh::vit
