// PLACEHOLDER
#include "ctl/expire.h"

#include "common/base/error.h"

namespace tidemark::ctl {
std::vector<OptionSpec> expireOptionSpecs() { return {}; }
std::vector<OptionSpec> keepOptionSpecs() { return {}; }
int expire(const Config&, const CommandLine&) { throw Error(ErrorCode::Internal, "not yet"); }
int keep(const Config&, const CommandLine&) { throw Error(ErrorCode::Internal, "not yet"); }
}  // namespace tidemark::ctl
