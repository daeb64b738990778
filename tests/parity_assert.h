// Catch2 assertion shared by the parity tests: every (ours, reference) pair of a runner is within its tolerance.
#pragma once
#include <string>
#include <vector>

#include "common/parity.h"
#include "tests/catch_compat.h"

namespace moh::test {

inline void require_checks_pass(const std::vector<ParityCheck>& checks, const std::string& file) {
  for (const auto& c : checks) {
    auto r = compare_tensors(c.ours, c.ref, c.tol);
    INFO(file << " " << c.name << ": max_abs " << r.max_abs << " (atol " << c.tol.atol << ", rtol " << c.tol.rtol
              << ") " << r.note);
    CHECK(r.shape_ok);
    CHECK(r.pass);
  }
}

}  // namespace moh::test
