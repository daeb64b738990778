// Catch2 v2 single header (Debian's catch2 2.13 here; carried as an extracted Debian package to machines that
// only have Catch2 v3, which ships no catch.hpp).
#pragma once
#if __has_include(<catch2/catch.hpp>)
#include <catch2/catch.hpp>
#else
#error "Catch2 v2 header <catch2/catch.hpp> not found: install Debian's catch2 or pass -DMOH_EXTRA_INCLUDE=<dir>"
#endif
