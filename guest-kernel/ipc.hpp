// MINIX 3 rendezvous IPC: SEND, RECEIVE, SENDREC, NOTIFY, SENDNB.
#pragma once

#include "proc.hpp"

namespace kernel::ipc {

// The system call: checks the trap mask, the endpoint and the send mask, then runs the
// primitive. Returns the caller's result; a caller that blocks gets kOk (or an error
// later, written into its saved rax when its partner dies).
// src is the RECEIVE source of kReplyRecv (unused otherwise).
int32_t do_ipc(Proc* caller, int32_t op, Endpoint e, UserAddr msg, Endpoint src = 0);

// A notification from a kernel task (kClock, kSystem, kHardware) or a process.
void notify(Proc* source, Proc* dst);

// Delivers a message built in the kernel (a kernel task's reply) to a process.
bool deliver_reply(Proc* dst, UserAddr where, Message& m);

// Takes p out of the SEND or RECEIVE it is blocked in (off its partner's queue), ready
// to run; its saved rax is left to the caller.
void interrupt(Proc* p);

// Called when p dies: every process blocked on it gets kEDeadSrcDst.
void cleanup(Proc* p);

}  // namespace kernel::ipc
