// Internal to comms: constructors of the compiled backends, called by MakeCollective after it has
// validated the options and computed `rank`.
#pragma once

#include <memory>

#include "comms/build_config.h"
#include "comms/collective.h"

namespace gt {
namespace comms_internal {

Result<std::unique_ptr<Collective>> MakeGlooCollective(const CollectiveOptions& options, int rank);
#if GT_HAVE_NCCL
Result<std::unique_ptr<Collective>> MakeNcclCollective(const CollectiveOptions& options, int rank);
Status NcclUsable();
#endif
#if GT_HAVE_MPI
Result<std::unique_ptr<Collective>> MakeMpiCollective(const CollectiveOptions& options, int rank);
Status MpiUsable();
#endif

// "<job>/g<generation>": the store prefix of one group generation.
std::string GroupPrefix(const CollectiveOptions& options);

}  // namespace comms_internal
}  // namespace gt
