// CPU thread policy (see threads.h). OpenBLAS is reached through dlsym so that builds against another BLAS still
// link; when the symbol is absent only LibTorch's setting applies.
#include "common/runtime/threads.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <thread>

#include <ATen/Parallel.h>

namespace moh {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

int set_cpu_threads(int n) {
  if (n <= 0) n = available_cores();
  at::set_num_threads(n);
  using SetThreads = void (*)(int);
  for (const char* name : {"openblas_set_num_threads", "goto_set_num_threads"}) {
    if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, name))) {
      fn(n);
      break;
    }
  }
  return n;
}

int cpu_threads() { return at::get_num_threads(); }

void use_one_cpu_thread_here() {
  // omp_set_num_threads changes only the calling thread's OpenMP team size (an OpenMP per-thread setting).
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) fn(1);
}

}  // namespace moh
