#include "dit/parity.h"
namespace moh::dit {
std::map<std::string, ParityRunner> vae_parity_runners() { return {}; }  // filled in by the VAE work
}
