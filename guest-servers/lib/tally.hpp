// The guest's test programs (blktest, forktest, rstest, sigtest): a "PASS what" or "FAIL
// what" line per check and the "N passed, M failed" total the integration tests look for.
#pragma once

#include "user.hpp"

namespace tally {

inline int g_passed = 0, g_failed = 0;

inline void check(bool ok, const char* what) {
    ++(ok ? g_passed : g_failed);
    user::print("%s %s\n", ok ? "PASS" : "FAIL", what);
}

// Prints the total; returns the failures (the program's exit status).
inline int finish() {
    user::print("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed;
}

}  // namespace tally
