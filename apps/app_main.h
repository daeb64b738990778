// Shared main() wrapper for the CLI apps: runs the app body and maps exceptions to one clear message and an
// exit code (1: bad input or failure, 2: unsupported request).
#pragma once
#include <functional>

namespace moh {
int run_app(const char* name, const std::function<int()>& body);
}
