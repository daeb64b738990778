#include "apps/bench/bench_common.h"
#include "common/error.h"

namespace moh::bench {
int bench_vit(const BenchOptions& o) { throw Unsupported("moh-bench vit is not implemented yet"); }
}  // namespace moh::bench
