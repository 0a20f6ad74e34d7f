// Runs a program as a child process for integration tests: argv in, exit status, timeout,
// stdout and stderr out. Header-only so every integration test can include it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

extern char** environ;

namespace ukvm::test {

struct ProcessOptions {
    // Wall-clock limit; past it the child's whole process group gets SIGKILL.
    // Zero means no limit.
    std::chrono::milliseconds timeout{60'000};
    // Variables set (or overridden) in the child, on top of the inherited environment.
    std::vector<std::pair<std::string, std::string>> env;
    // Names removed from the child's environment.
    std::vector<std::string> unset_env;
    // Written to the child's stdin, which is then closed. Without it stdin is /dev/null.
    std::string input;
    bool has_input = false;
    // Then, in order: once stdout shows `wait_for` (after the previous step's match) and
    // `delay` more has passed, write `text` (stdin stays open until the last step is
    // written). Needs has_input.
    struct Step {
        std::string wait_for;
        std::string text;
        std::chrono::milliseconds delay{0};
    };
    std::vector<Step> script;
    // Working directory of the child; empty: the caller's.
    std::filesystem::path cwd;
};

struct ProcessResult {
    int status = -1;         // exit status, or 128 + signal number if killed by a signal
    bool timed_out = false;  // the timeout fired and the child was killed
    int signal = 0;          // the signal that ended the child, 0 if it exited
    std::string out;         // everything it wrote to stdout
    std::string err;         // everything it wrote to stderr
};

namespace detail {

// Owns one file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

[[noreturn]] inline void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

inline std::pair<Fd, Fd> make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    return {Fd(fds[0]), Fd(fds[1])};
}

// The child's environment: ours, minus unset_env and overridden names, plus env.
inline std::vector<std::string> child_environment(const ProcessOptions& options) {
    auto removed = [&](const std::string& entry) {
        const std::string name = entry.substr(0, entry.find('='));
        if (std::find(options.unset_env.begin(), options.unset_env.end(), name) !=
            options.unset_env.end())
            return true;
        return std::any_of(options.env.begin(), options.env.end(),
                           [&](const auto& kv) { return kv.first == name; });
    };
    std::vector<std::string> result;
    for (char** e = environ; *e != nullptr; ++e) {
        if (!removed(*e)) result.emplace_back(*e);
    }
    for (const auto& [name, value] : options.env) result.push_back(name + "=" + value);
    return result;
}

}  // namespace detail

// Runs argv[0] (searched in PATH when it has no '/') with argv, waits for it to end or
// time out. Throws std::system_error when the program cannot be started at all.
inline ProcessResult run_process(const std::vector<std::string>& argv,
                                 const ProcessOptions& options = {}) {
    using namespace std::chrono;
    if (argv.empty()) throw std::invalid_argument("run_process: empty argv");

    // Everything the child needs is built before fork: only async-signal-safe calls after.
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    const std::vector<std::string> env = detail::child_environment(options);
    std::vector<char*> cenv;
    for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    const std::string cwd = options.cwd.string();

    auto [out_r, out_w] = detail::make_pipe();
    auto [err_r, err_w] = detail::make_pipe();
    // Reports exec failure: closed by a successful exec (O_CLOEXEC), or carries errno.
    auto [exec_r, exec_w] = detail::make_pipe();
    // A socket rather than a pipe for stdin so that writing after the child has exited
    // fails with EPIPE (MSG_NOSIGNAL) instead of killing the test with SIGPIPE.
    detail::Fd in_parent, in_child;
    if (options.has_input) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            detail::throw_errno("socketpair");
        in_parent = detail::Fd(sv[0]);
        in_child = detail::Fd(sv[1]);
    } else {
        int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) detail::throw_errno("open /dev/null");
        in_child = detail::Fd(fd);
    }

    const pid_t pid = ::fork();
    if (pid < 0) detail::throw_errno("fork");
    if (pid == 0) {
        // Own process group, so a timeout kills the child's children as well.
        ::setpgid(0, 0);
        ::dup2(in_child.get(), STDIN_FILENO);
        ::dup2(out_w.get(), STDOUT_FILENO);
        ::dup2(err_w.get(), STDERR_FILENO);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
            int e = errno;
            (void)!::write(exec_w.get(), &e, sizeof e);
            ::_exit(127);
        }
        ::execvpe(cargv[0], cargv.data(), cenv.data());
        int e = errno;
        (void)!::write(exec_w.get(), &e, sizeof e);
        ::_exit(127);
    }

    in_child.reset();
    out_w.reset();
    err_w.reset();
    exec_w.reset();

    int exec_errno = 0;
    ssize_t got;
    do {
        got = ::read(exec_r.get(), &exec_errno, sizeof exec_errno);
    } while (got < 0 && errno == EINTR);
    if (got == static_cast<ssize_t>(sizeof exec_errno)) {
        ::waitpid(pid, nullptr, 0);
        throw std::system_error(exec_errno, std::generic_category(),
                                "cannot run '" + argv[0] + "'");
    }

    ProcessResult result;
    std::string input = options.input;
    std::size_t input_done = 0;
    std::size_t step = 0, search_from = 0;
    std::optional<steady_clock::time_point> step_due;  // the current step matched: write then
    auto input_finished = [&] {
        return input_done == input.size() && step == options.script.size();
    };
    if (options.has_input && input_finished()) in_parent.reset();
    const auto deadline = steady_clock::now() + options.timeout;

    while (out_r.get() >= 0 || err_r.get() >= 0) {
        int wait_ms = -1;
        if (options.timeout.count() > 0 && !result.timed_out) {
            const auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
            if (left.count() <= 0) {
                // Kill the group; the pipes then reach EOF unless a stray process escaped
                // the group, which the bounded drain below tolerates.
                result.timed_out = true;
                ::kill(-pid, SIGKILL);
                ::kill(pid, SIGKILL);
                in_parent.reset();
            } else {
                wait_ms = static_cast<int>(left.count());
            }
        }
        if (result.timed_out) wait_ms = 1000;
        if (step_due) {
            const auto until = duration_cast<milliseconds>(*step_due - steady_clock::now());
            const int due_ms = static_cast<int>(std::max<long long>(until.count(), 0));
            wait_ms = wait_ms < 0 ? due_ms : std::min(wait_ms, due_ms);
        }

        const int in_fd = input_done < input.size() ? in_parent.get() : -1;
        pollfd fds[3] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}, {in_fd, POLLOUT, 0}};
        const int n = ::poll(fds, 3, wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            detail::throw_errno("poll");
        }
        if (n == 0 && result.timed_out) break;  // killed, yet a pipe stays open: give up on it
        auto drain = [](detail::Fd& fd, short revents, std::string& into) {
            if (fd.get() < 0 || revents == 0) return;
            char buf[4096];
            const ssize_t r = ::read(fd.get(), buf, sizeof buf);
            if (r > 0) {
                into.append(buf, static_cast<std::size_t>(r));
            } else if (r == 0 || errno != EINTR) {
                fd.reset();
            }
        };
        drain(out_r, fds[0].revents, result.out);
        drain(err_r, fds[1].revents, result.err);
        while (in_parent.get() >= 0 && step < options.script.size()) {
            if (!step_due) {
                const std::size_t at = result.out.find(options.script[step].wait_for, search_from);
                if (at == std::string::npos) break;
                search_from = at + options.script[step].wait_for.size();
                step_due = steady_clock::now() + options.script[step].delay;
            }
            if (steady_clock::now() < *step_due) break;
            step_due.reset();
            input += options.script[step++].text;
        }
        if (in_fd >= 0 && fds[2].revents != 0) {
            const ssize_t w = ::send(in_parent.get(), input.data() + input_done,
                                     input.size() - input_done, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) input_done += static_cast<std::size_t>(w);
            if (w < 0 && errno != EAGAIN && errno != EINTR) in_parent.reset();  // stopped reading
        }
        if (in_parent.get() >= 0 && input_finished()) in_parent.reset();
    }

    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0) {
        if (errno != EINTR) detail::throw_errno("waitpid");
    }
    if (WIFEXITED(wstatus)) {
        result.status = WEXITSTATUS(wstatus);
    } else if (WIFSIGNALED(wstatus)) {
        result.signal = WTERMSIG(wstatus);
        result.status = 128 + result.signal;
    }
    return result;
}

// For test failure messages: everything about a run in one string.
inline std::string describe(const ProcessResult& r) {
    std::string s = "status=" + std::to_string(r.status);
    if (r.signal != 0) s += " signal=" + std::to_string(r.signal);
    if (r.timed_out) s += " (timed out)";
    s += "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
    return s;
}

// The first directory in PATH holding an executable `name`, or an empty path.
inline std::filesystem::path find_program(const std::string& name) {
    const char* path = ::getenv("PATH");
    const std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
    for (size_t start = 0; start <= dirs.size();) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        const std::filesystem::path candidate =
            std::filesystem::path(dirs.substr(start, end - start)) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        start = end + 1;
    }
    return {};
}

}  // namespace ukvm::test
