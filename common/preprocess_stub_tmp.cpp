#include "common/error.h"
#include "common/parity.h"
namespace moh {
std::vector<ParityCheck> run_preproc_parity(const GoldenFile& g) { throw Unsupported("preproc parity not built yet"); }
}
