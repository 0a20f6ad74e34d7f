// The in-guest test suite's harness: each area of the suite (ipc_rules, ipc_deadlock, ...)
// is its own program, started by the runner (ipc_test). A test is a bool function run by
// run(); CHECK/CHECK_EQ end it with a message. finish() prints "N passed, M failed",
// reports the counts to the runner and returns M, the program's exit status.
#pragma once

#include "protocol.hpp"
#include "user.hpp"

namespace t {

using namespace ukvm::kernel;

extern Endpoint g_echo;            // this area's own ipc_echo (begin() starts it)
extern const char* g_skip_reason;  // a test that finds the host cannot show what it
                                   // checks sets this (with the reason)

bool check(bool ok, const char* what, int line);
bool check_eq(int64_t a, int64_t b, const char* what, int line);
#define CHECK(c)                                        \
    do {                                                \
        if (!t::check((c), #c, __LINE__)) return false; \
    } while (0)
#define CHECK_EQ(a, b)                                                    \
    do {                                                                  \
        if (!t::check_eq((a), (b), #a " == " #b, __LINE__)) return false; \
    } while (0)

void begin(const char* area);  // prints the area's name, starts g_echo
void run(const char* name, bool (*test)());
int finish();

Message request(int32_t type, int64_t a = 0, int64_t b = 0, int64_t c = 0, int64_t d = 0);
// Waits for the SYSTEM notification about a dead child and returns its record (the reason
// and detail, if asked for).
bool wait_child(Endpoint child, uint64_t* reason = nullptr, uint64_t* detail = nullptr);
// Returns once echo is back in RECEIVE: it answers kEcho with REPLYRECV, which puts it
// there atomically (after a plain SEND reply it may not be there yet when we run again).
int32_t sync_echo();
int32_t kill(Endpoint e);
// Kills the child e and waits for its death record (its reason and detail, if asked for).
bool kill_and_wait(Endpoint e, uint64_t* reason = nullptr, uint64_t* detail = nullptr);

}  // namespace t
