// One guest = one `ukvm run` process. ukvmd watches it through a pidfd (in its epoll loop)
// and never kills it on its own exit: guests outlive a daemon restart, and the next daemon
// adopts them from their pid files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "vmm/kvm.hpp"

namespace ukvm::ukvmd {

struct ProcessExit {
    bool known = true;  // false: adopted process, its status went to its real parent
    bool signaled = false;
    int code = 0;  // exit status, or the signal number when signaled
};

class GuestProcess {
public:
    // Starts `ukvm_binary run config` in its own session, stdin /dev/null, stdout and
    // stderr appended to log_fd; with cgroup_procs >= 0 (an open cgroup.procs), the child
    // joins that cgroup before exec. Throws std::system_error when it cannot be started.
    static std::unique_ptr<GuestProcess> spawn(const std::string& ukvm_binary,
                                               const std::filesystem::path& config, int log_fd,
                                               int cgroup_procs = -1);
    // A process an earlier ukvmd started: returned only if `pid` still names it (same
    // start time), otherwise nothing.
    static std::unique_ptr<GuestProcess> adopt(pid_t pid, std::uint64_t start_time);

    GuestProcess(const GuestProcess&) = delete;
    GuestProcess& operator=(const GuestProcess&) = delete;
    ~GuestProcess();

    pid_t pid() const { return pid_; }
    int pidfd() const { return pidfd_.get(); }
    std::uint64_t start_time() const { return start_time_; }
    // Sends sig through the pidfd (never to a recycled pid); false if it already exited.
    bool signal(int sig);
    // Collects the exit once the pidfd is readable; nothing if it is still running.
    std::optional<ProcessExit> reap();
    // User + system CPU time of the whole process (its vCPU threads included).
    std::uint64_t cpu_time_ns() const;

private:
    GuestProcess(pid_t pid, Fd pidfd, bool child);
    pid_t pid_;
    Fd pidfd_;
    bool child_;
    bool reaped_ = false;
    std::uint64_t start_time_ = 0;
};

// Field 22 of /proc/PID/stat (clock ticks after boot), or nothing if there is no PID.
std::optional<std::uint64_t> process_start_time(pid_t pid);

}  // namespace ukvm::ukvmd
