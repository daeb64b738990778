#include "apps/bench/bench_common.h"
#include "common/error.h"

namespace moh::bench {
int bench_attention(const BenchOptions& o) { throw Unsupported("moh-bench attention is not implemented yet"); }
}  // namespace moh::bench
