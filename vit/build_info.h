// Which source revision this build came from (recorded by moh-eval --results-file beside the numbers, as a
// benchmark table needs). No official counterpart.
#pragma once

namespace moh::vit {

// `git describe --always --dirty` of the source tree at build time, or "unknown" (not a git checkout, no git).
const char* git_revision();

}  // namespace moh::vit
