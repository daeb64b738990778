#include "apps/app_main.h"

#include <exception>
#include <iostream>

#include "common/error.h"

namespace moh {

int run_app(const char* name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const Unsupported& e) {
    std::cerr << name << ": unsupported: " << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << name << ": internal error in LibTorch: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace moh
