// Error types shared by the whole toolkit. Apps map them to exit codes and one clear message.
#pragma once
#include <stdexcept>
#include <string>

namespace moh {

// Bad input from the user: a file that cannot be read, a wrong flag value, mismatching weights. Exit code 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A valid request this build or model cannot serve (unknown golden family, CUDA op without CUDA). Exit code 2.
class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& what) : Error(what) {}
};

}  // namespace moh

// Throws moh::Error with a message built from stream-able parts when cond is false.
#define MOH_CHECK(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) throw ::moh::Error(::moh::detail::concat(__VA_ARGS__));       \
  } while (0)

#include <sstream>
namespace moh::detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace moh::detail
