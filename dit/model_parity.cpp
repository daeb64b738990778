#include "dit/parity.h"
namespace moh::dit {
std::map<std::string, ParityRunner> model_parity_runners() { return {}; }  // filled in by the DiT model work
}
