// The build's git revision (vit/build_info.h): the only file that includes the generated header, so a new revision
// recompiles this file alone.
#include "vit/build_info.h"

#include "moh_git_revision.h"

namespace moh::vit {

const char* git_revision() { return MOH_GIT_REVISION; }

}  // namespace moh::vit
