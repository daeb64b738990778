// The parity contract's one shared helper: add_check pairs our tensor with the golden file's (see parity.h).
#include "parity/parity.h"

namespace moh {

void add_check(std::vector<ParityCheck>& checks, const GoldenFile& g, const std::string& name,
               const torch::Tensor& ours) {
  if (!g.has(name)) return;
  checks.push_back({name, ours, g.get(name), g.tolerance(name)});
}

}  // namespace moh
