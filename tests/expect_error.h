// Test helper: runs a callable that must throw moh::Error (or a subclass) and returns the message, so tests can check
// what the message says (file name, the problem) with plain CHECKs that work with Catch2 v2 and v3 alike.
#pragma once
#include <string>

#include "common/error.h"
#include "tests/catch_compat.h"

namespace moh::test {

template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const moh::Error& e) {
    return e.what();
  }
  FAIL("expected a moh::Error, but nothing was thrown");
  return "";
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace moh::test
