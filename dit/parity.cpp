#include "dit/parity.h"

namespace moh::dit {
std::map<std::string, ParityRunner> parity_runners() { return {}; }
}  // namespace moh::dit
