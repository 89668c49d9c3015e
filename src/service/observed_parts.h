// The hooks that let /metrics see the parts (core/parts.h PartHooks): the time each model took to
// load (sra_model_load_seconds{model}) and the calls to the storage and the message bus that
// failed for a reason of the part's own, not the caller's (sra_part_errors_total{part,
// operation}: unavailable, misconfigured or internal errors, never "no such task"). The wrappers
// forward every call unchanged and are as thread-safe as the parts they wrap.
#pragma once

#include "core/parts.h"

namespace sra {

PartHooks observed_part_hooks();

}  // namespace sra
