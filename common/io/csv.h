// One CSV field as RFC 4180 writes it: quoted (with inner quotes doubled) when it holds a comma, quote or newline.
// No official counterpart; shared by the CSV writers (moh-eval --routes-stats, common/routes/stats.cpp).
#pragma once
#include <string>

namespace moh {

inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace moh
