#include "apps/bench/bench_common.h"
#include "common/error.h"

namespace moh::bench {
int bench_dit(const BenchOptions& o) { throw Unsupported("moh-bench dit is not implemented yet"); }
}  // namespace moh::bench
