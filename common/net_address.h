// Facts about the addresses our daemons listen on.
#pragma once

#include <string>

namespace rm::common {

// True for "localhost", 127.0.0.0/8 and ::1 (with or without brackets): addresses only this
// machine reaches. A wildcard (0.0.0.0, ::) or any other name is not loopback.
bool isLoopbackHost(const std::string& host);

}  // namespace rm::common
