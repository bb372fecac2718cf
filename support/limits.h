// Limits on numbers users give, shared by the compiler, the runtime and the driver (the
// public API restates the ones its users see, and the driver checks that they agree).
#pragma once

#include <cstdint>

namespace nas {

// PC-DARTS' K (the candidates see 1/K of the channels): PC-DARTS uses 4, and 1/K of a few
// hundred channels is already a handful.
constexpr int64_t kMaxPartialChannels = 1024;

}  // namespace nas
