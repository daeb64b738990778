#include "vit/parity.h"

namespace moh::vit {
std::map<std::string, ParityRunner> parity_runners() { return {}; }
}  // namespace moh::vit
