#include "vmm/ukvmd/guest_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

namespace ukvm::ukvmd {
namespace {

int pidfd_open(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// /proc/PID/stat fields after the command name (which may contain spaces and parens).
std::optional<std::vector<std::string>> stat_fields(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    const auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 1));
    std::vector<std::string> fields;  // fields[0] is field 3 (state)
    for (std::string f; rest >> f;) fields.push_back(f);
    return fields;
}

}  // namespace

std::optional<std::uint64_t> process_start_time(pid_t pid) {
    const auto fields = stat_fields(pid);
    if (!fields || fields->size() < 20) return std::nullopt;
    return std::stoull((*fields)[19]);  // field 22
}

GuestProcess::GuestProcess(pid_t pid, Fd pidfd, bool child)
    : pid_(pid), pidfd_(std::move(pidfd)), child_(child) {
    start_time_ = process_start_time(pid).value_or(0);
}

GuestProcess::~GuestProcess() = default;

std::unique_ptr<GuestProcess> GuestProcess::spawn(const std::string& ukvm_binary,
                                                  const std::filesystem::path& config, int log_fd,
                                                  int cgroup_procs) {
    const std::string config_arg = config.string();
    std::vector<char*> argv = {const_cast<char*>(ukvm_binary.c_str()), const_cast<char*>("run"),
                               const_cast<char*>(config_arg.c_str()), nullptr};
    const Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!devnull.valid()) throw_errno("open /dev/null");
    // Carries the child's errno if exec fails; closed by a successful exec (O_CLOEXEC).
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw_errno("pipe2");
    Fd exec_r(pipefd[0]), exec_w(pipefd[1]);

    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        // Own session: a Ctrl-C or SIGHUP aimed at the daemon's terminal spares guests.
        ::setsid();
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        ::dup2(devnull.get(), STDIN_FILENO);
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
        if (cgroup_procs >= 0 && ::write(cgroup_procs, "0", 1) != 1) {
            static const char kMsg[] = "ukvmd: could not join the guest's cgroup; no limits\n";
            (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
        }
        // Connections, listening sockets and other guests' fds are O_CLOEXEC.
        if (ukvm_binary.find('/') != std::string::npos) {
            ::execv(argv[0], argv.data());
        } else {
            ::execvp(argv[0], argv.data());
        }
        const int e = errno;
        (void)!::write(exec_w.get(), &e, sizeof e);
        ::_exit(127);
    }
    exec_w.reset();
    int exec_errno = 0;
    ssize_t got;
    do {
        got = ::read(exec_r.get(), &exec_errno, sizeof exec_errno);
    } while (got < 0 && errno == EINTR);
    if (got == static_cast<ssize_t>(sizeof exec_errno)) {
        ::waitpid(pid, nullptr, 0);
        throw std::system_error(exec_errno, std::generic_category(), "cannot run " + ukvm_binary);
    }
    Fd pidfd(pidfd_open(pid));
    if (!pidfd.valid()) {
        const int err = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw std::system_error(err, std::generic_category(), "pidfd_open");
    }
    return std::unique_ptr<GuestProcess>(new GuestProcess(pid, std::move(pidfd), true));
}

std::unique_ptr<GuestProcess> GuestProcess::adopt(pid_t pid, std::uint64_t start_time) {
    if (pid <= 1) return nullptr;
    Fd pidfd(pidfd_open(pid));
    if (!pidfd.valid()) return nullptr;
    // Checked after opening the pidfd: from here on the pid cannot be recycled under us.
    if (process_start_time(pid) != start_time) return nullptr;
    auto p = std::unique_ptr<GuestProcess>(new GuestProcess(pid, std::move(pidfd), false));
    return p;
}

bool GuestProcess::signal(int sig) {
    if (reaped_) return false;
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0) {
        if (errno == ESRCH) return false;
        throw_errno("pidfd_send_signal");
    }
    return true;
}

std::optional<ProcessExit> GuestProcess::reap() {
    if (reaped_) return std::nullopt;
    if (!child_) {
        // Not our child: the pidfd being readable is all we learn.
        reaped_ = true;
        return ProcessExit{false, false, 0};
    }
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) != 0) {
        if (errno == ECHILD) {
            reaped_ = true;
            return ProcessExit{false, false, 0};
        }
        throw_errno("waitid");
    }
    if (info.si_pid == 0) return std::nullopt;  // still running
    reaped_ = true;
    ProcessExit exit;
    exit.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
    exit.code = info.si_status;
    return exit;
}

std::uint64_t GuestProcess::cpu_time_ns() const {
    const auto fields = stat_fields(pid_);
    if (!fields || fields->size() < 13) return 0;
    const std::uint64_t ticks = std::stoull((*fields)[11]) + std::stoull((*fields)[12]);
    const long hz = ::sysconf(_SC_CLK_TCK);
    return ticks * (1000000000ull / static_cast<std::uint64_t>(hz > 0 ? hz : 100));
}

}  // namespace ukvm::ukvmd
