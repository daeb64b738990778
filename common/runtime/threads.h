// CPU thread policy shared by every app: one number sets LibTorch's intra-op threads and the BLAS library's
// threads together, so the two never oversubscribe the cores (measured: with neither set, MoH-ViT S-80 ran
// at 1.61 img/s on a 2-core machine instead of 2.59 img/s).
#pragma once

namespace moh {

// The machine's logical cores available to this process (sched affinity), at least 1.
int available_cores();
// Sets LibTorch intra-op threads and OpenBLAS threads to n (n <= 0: available_cores()). Returns the number used.
int set_cpu_threads(int n);
// The thread count in effect (LibTorch's intra-op threads).
int cpu_threads();
// For helper threads (image decoding next to the model): their own LibTorch/OpenMP work runs single-threaded,
// so they do not compete with the model's thread team.
void use_one_cpu_thread_here();

}  // namespace moh
