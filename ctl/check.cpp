// PLACEHOLDER being written by a helper: never committed in this state.
#include "ctl/check.h"

#include "common/base/error.h"

namespace tidemark::ctl {
std::vector<OptionSpec> checkOptionSpecs() { return {}; }
int check(const Config&, const CommandLine&) { throw Error(ErrorCode::Internal, "not yet"); }
}  // namespace tidemark::ctl
