// Requests between the test suite's programs and their helpers (m_type values).
#pragma once

#include <stdint.h>

namespace proto {

enum : int32_t {
    kEcho = 1,             // reply with the payload, m_type kEchoReply
    kForward = 2,          // i64[0] endpoint, i64[1] m_type: SENDREC it, reply i64[0] = result
    kNotifyThenReply = 3,  // NOTIFY the requester i64[0] times, then reply
    kHold = 4,             // receive, never reply
    kSendTo = 5,           // SEND {kSendTo, i64[1] tag} to i64[0] (blocking)
    kSafeRead = 6,  // i64[0] grant, i64[1] offset, i64[2] len: reply i64[0] result, i64[1] byte sum
    kSafeWrite = 7,  // i64[0] grant, i64[1] offset, i64[2] len, i64[3] byte: reply i64[0] result
    kExit = 8,       // exit with status i64[0]
    kAsk = 9,        // a helper asks its parent what to do
    kReport = 10,    // ipc_user's results
    kEchoPlain = 12,
    kClobberXmm = 13,  // load xmm0 with i64[0], then reply  // as kEcho, replying with SEND (kEcho
                       // uses REPLYRECV)
    kSpin = 11,        // reply i64[0] = a read grant on a counter, then spin incrementing it
    kEchoReply = 101,
    kAreaReport =
        200,  // an area of the suite to the runner: i64[0] passed, [1] failed, [2] skipped
};

// What the fault program does (the reply to its kAsk, i64[0]).
enum Fault : int64_t {
    kInvalidOpcode = 0,
    kReadKernel = 1,
    kPrivileged = 2,
    kDivide = 3,
    kWriteText = 4,
    kUnmapped = 5,
    kExitNormally = 6,
    kExecuteStack = 7,
};

}  // namespace proto
