// The small libc for guest programs on top of user.hpp: strings, malloc, and the system
// calls as messages to the servers (PM, DS, TTY), which are found by name.
#pragma once

#include "proto.hpp"
#include "user.hpp"

extern "C" {
int strcmp(const char* a, const char* b);
int strncmp(const char* a, const char* b, size_t n);
char* strchr(const char* s, int c);
char* strncpy(char* dst, const char* src, size_t n);
void* malloc(size_t n);
void free(void* p);
}

namespace sys {

using ukvm::kernel::Endpoint;
using ukvm::kernel::Message;

// Parses a decimal number (optionally negative); false if s is not one.
bool parse_int(const char* s, int64_t* out);

// SENDREC to the server running program `name`, found through DS (or the kernel while DS
// is not up); if the cached endpoint died (the server was restarted) it is looked up
// again and the request retried once. The IPC error, or the reply's m_type.
int32_t call(const char* name, Message* m);
// The endpoint DS has for name (kNone if none).
Endpoint ds_lookup(const char* name);

// Process management (PM).
int32_t spawn(const char* program, const char* args);  // a new child -> its pid
// Replaces the caller's program (same pid); returns only on failure, with the error.
int32_t exec(const char* program, const char* args);
struct WaitStatus {
    int32_t pid;
    uint64_t reason, detail;  // ukvm::kernel::ExitReason; status, vector or 0
};
int32_t wait(int32_t pid, WaitStatus* status);  // pid -1: any child
int32_t fork();                                 // the child's pid, or 0 in the child
int32_t getpid();
int32_t sleep_ns(uint64_t ns);  // users cannot take alarms themselves: PM's timer
// Sends signal sig (proto::kSig*; 0 only checks that pid exists) to process pid, or with
// -pid to every live child pid started (no process groups: the shell's job).
int32_t kill(int32_t pid, int sig);
// Signal handlers (sigaction-style): handler is kSigDefault, kSigIgnore or a function
// that gets the signal number; a blocking call it interrupted returns kEIntr. Handlers
// stay across fork, go back to the default on exec; there are no masks (a signal that
// arrives while its handler runs nests). *old (if given) gets the previous disposition.
using SigHandler = void (*)(int);
inline const SigHandler kSigDefault = nullptr;
inline const SigHandler kSigIgnore = reinterpret_cast<SigHandler>(proto::kSigIgnore);
int32_t signal(int sig, SigHandler handler, SigHandler* old = nullptr);
// "INT" / "SIGINT" / "2" -> 2; 0 if unknown. And back ("INT"; "?" if unknown).
int signal_number(const char* name);
const char* signal_name(int sig);
struct ProcEntry {
    ukvm::kernel::ProcInfo info;
    int32_t pid, parent_pid;
};
// The first live process in a slot >= *slot; advances *slot past it. false at the end.
bool next_proc(int32_t* slot, ProcEntry* out);
// The pid of the first live process named name; -1 if none.
int32_t pid_of(const char* name);
[[noreturn]] void poweroff(int status);
[[noreturn]] void reboot();

// Console input (TTY): up to one line, at most n bytes; the count or an error (kEIntr:
// a signal handler ran).
int32_t read_line(char* buf, size_t n);
// Makes pid TTY's foreground process: ^C sends it SIGINT (0: nobody; -pid: pid's
// children, so that a job is foreground from before it starts).
int32_t tty_foreground(int32_t pid);
// Waits until the console output written so far is out (tcdrain).
int32_t tty_drain();

}  // namespace sys
