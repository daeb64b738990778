#include "dit/parity.h"

namespace moh::dit {
std::map<std::string, ParityRunner> parity_runners() {
  auto r = model_parity_runners();
  for (auto& [k, v] : vae_parity_runners()) r[k] = v;
  return r;
}
}  // namespace moh::dit
