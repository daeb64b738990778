// Catch2 assertion shared by the parity tests: every (ours, reference) pair of a runner is within its tolerance.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "parity/parity.h"
#include "tests/catch_compat.h"

namespace moh::test {

// Checks every pair and returns the names compared (so a test can also check that nothing was left out).
inline std::set<std::string> require_checks_pass(const std::vector<ParityCheck>& checks, const std::string& file) {
  std::set<std::string> names;
  for (const auto& c : checks) {
    auto r = compare_tensors(c.ours, c.ref, c.tol);
    INFO(file << " " << c.name << ": max_abs " << r.max_abs << " max|ref| " << r.max_ref << " (atol " << c.tol.atol
              << ", rtol " << c.tol.rtol << ") " << r.note);
    CHECK(r.shape_ok);
    CHECK(r.pass);
    names.insert(c.name);
  }
  return names;
}

}  // namespace moh::test
