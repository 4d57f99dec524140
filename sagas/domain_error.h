#pragma once
// Domain refusals: see engine/domain_error.h.

#include "engine/domain_error.h"

namespace wsflow::sagas {
using wsflow::DomainError;
}  // namespace wsflow::sagas
