// PLACEHOLDER being written by a helper: never committed in this state.
#include "ctl/verify.h"

#include "common/base/error.h"

namespace tidemark::ctl {
std::vector<OptionSpec> verifyOptionSpecs() { return {}; }
int verify(const Config&, const CommandLine&) { throw Error(ErrorCode::Internal, "not yet"); }
}  // namespace tidemark::ctl
