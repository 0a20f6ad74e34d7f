#include "vmm/control/control_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace ukvm::control {
namespace {

constexpr std::size_t kMaxLine = 256;
constexpr std::size_t kMaxClients = 16;
constexpr std::size_t kMaxConsoleBacklog = 1024 * 1024;
constexpr std::size_t kMaxUnclaimed = 64 * 1024;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

sockaddr_un address(const std::filesystem::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (p.empty() || p.size() >= sizeof addr.sun_path) {
        throw std::runtime_error("control socket path '" + p + "' is empty or longer than " +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes");
    }
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    return addr;
}

std::string reply(const GuestInfo& i) {
    return "ok\nname: " + i.name + "\nstate: " + i.state +
           "\nuptime-ms: " + std::to_string(i.uptime_ms) +
           "\nmemory-mib: " + std::to_string(i.memory_mib) +
           "\nvcpu-time-ns: " + std::to_string(i.vcpu_time_ns) + "\nexit-reason: " + i.exit_reason +
           "\npid: " + std::to_string(i.pid) +
           "\nconsole-uart-bytes: " + std::to_string(i.console_uart_bytes) +
           "\nconsole-hypercall-bytes: " + std::to_string(i.console_hypercall_bytes) +
           "\nconsole-virtio-bytes: " + std::to_string(i.console_virtio_bytes) + "\n\n";
}

}  // namespace

ControlServer::ControlServer(std::filesystem::path socket, GuestControl& guest, ServerMode mode)
    : path_(std::move(socket)), guest_(guest), mode_(mode) {
    const sockaddr_un addr = address(path_);
    {
        Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (probe.valid() &&
            ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
            throw std::runtime_error("control socket " + path_.string() +
                                     " is in use by another process");
        }
        struct stat st {};
        if (::lstat(path_.c_str(), &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                throw std::runtime_error("control socket " + path_.string() +
                                         " exists and is not a socket");
            }
            ::unlink(path_.c_str());
        }
    }
    listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listen_.valid()) throw_errno("socket");
    const mode_t old = ::umask(0177);  // 0600 from the start: the API can kill the guest
    const int bound = ::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int bind_errno = errno;
    ::umask(old);
    if (bound != 0) {
        errno = bind_errno;
        throw_errno("bind " + path_.string());
    }
    if (::listen(listen_.get(), 8) != 0) throw_errno("listen " + path_.string());
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_.valid()) throw_errno("eventfd");
    thread_ = std::thread([this] { serve(); });
}

ControlServer::~ControlServer() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    ::unlink(path_.c_str());
}

void ControlServer::console_output(std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) return;
    {
        std::lock_guard lock(mutex_);
        pending_console_.append(bytes.begin(), bytes.end());
        if (pending_console_.size() > kMaxConsoleBacklog) {
            pending_console_.erase(0, pending_console_.size() - kMaxConsoleBacklog);
        }
    }
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
}

void ControlServer::serve() {
    bool stopping = false;
    for (;;) {
        std::vector<pollfd> fds = {{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
        for (const Client& c : clients_) {
            fds.push_back(
                {c.fd.get(), static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
        }
        if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
        if (fds[1].revents & POLLIN) {
            std::uint64_t v;
            (void)!::read(wake_.get(), &v, sizeof v);
            std::string output;
            {
                std::lock_guard lock(mutex_);
                stopping = stopping_;
                output.swap(pending_console_);
            }
            bool attached = false;
            for (Client& c : clients_) {
                if (!c.console || c.input_only) continue;
                attached = true;
                c.out += output;
                if (c.out.size() > kMaxConsoleBacklog) {
                    c.out.erase(0, c.out.size() - kMaxConsoleBacklog);
                }
            }
            if (!attached) {
                unclaimed_ += output;
                if (unclaimed_.size() > kMaxUnclaimed) {
                    unclaimed_.erase(0, unclaimed_.size() - kMaxUnclaimed);
                }
            }
            if (stopping) {
                // Last words (a destroy's "ok", console output up to the end), if the
                // clients take them now; nobody waits for a slow reader.
                for (Client& c : clients_) {
                    if (!c.out.empty()) write_client(c);
                }
                return;
            }
        }
        // Indexes into fds match clients_ before this round's accepts and removals.
        std::vector<bool> keep(clients_.size(), true);
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            const short rev = fds[i + 2].revents;
            if (rev & (POLLIN | POLLHUP | POLLERR)) keep[i] = read_client(clients_[i]);
            if (keep[i] && !clients_[i].out.empty()) keep[i] = write_client(clients_[i]);
        }
        std::vector<Client> alive;
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            if (keep[i]) alive.push_back(std::move(clients_[i]));
        }
        clients_ = std::move(alive);
        if (fds[0].revents & POLLIN) accept_clients();
    }
}

void ControlServer::accept_clients() {
    for (;;) {
        Fd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd.valid()) return;
        if (clients_.size() >= kMaxClients) continue;  // closed: too many clients
        Client c;
        c.fd = std::move(fd);
        if (mode_ == ServerMode::ConsoleOnly) attach_console(c);
        clients_.push_back(std::move(c));
    }
}

void ControlServer::attach_console(Client& c) {
    c.console = true;
    c.out += unclaimed_;
    unclaimed_.clear();
}

bool ControlServer::read_client(Client& c) {
    char buf[4096];
    const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (c.console) {
        try {
            guest_.console_input(
                std::span(reinterpret_cast<const std::uint8_t*>(buf), static_cast<std::size_t>(n)));
        } catch (const std::exception&) {
            // Input the guest cannot take right now is dropped, like a full UART FIFO.
        }
        return true;
    }
    if (c.closing) return true;  // one request per connection in flight is enough
    c.in.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while (!c.console && !c.closing && (nl = c.in.find('\n')) != std::string::npos) {
        std::string line = c.in.substr(0, nl);
        c.in.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        handle_line(c, line);
    }
    if (!c.console && c.in.size() > kMaxLine) {
        c.out += "error: request longer than " + std::to_string(kMaxLine) + " bytes\n\n";
        c.closing = true;
        c.in.clear();
    }
    return true;
}

bool ControlServer::write_client(Client& c) {
    const ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.out.erase(0, static_cast<std::size_t>(n));
    return !(c.closing && c.out.empty());
}

void ControlServer::handle_line(Client& c, const std::string& line) {
    try {
        if (line == "info") {
            c.out += reply(guest_.info());
        } else if (line == "pause") {
            guest_.pause();
            c.out += "ok\n\n";
        } else if (line == "resume") {
            guest_.resume();
            c.out += "ok\n\n";
        } else if (line == "shutdown") {
            guest_.request_shutdown();
            c.out += "ok\n\n";
        } else if (line == "destroy") {
            guest_.destroy();
            c.out += "ok\n\n";
        } else if (line == "console") {
            c.out += "ok\n\n";
            attach_console(c);
            if (!c.in.empty()) {  // typed ahead of the reply
                guest_.console_input(
                    std::span(reinterpret_cast<const std::uint8_t*>(c.in.data()), c.in.size()));
                c.in.clear();
            }
        } else if (line == "console-input") {
            // Input only (ukvmd: the output reaches virsh from the log); no output is
            // queued for this client and the unclaimed output stays for a real console.
            c.out += "ok\n\n";
            c.console = true;
            c.input_only = true;
            if (!c.in.empty()) {
                guest_.console_input(
                    std::span(reinterpret_cast<const std::uint8_t*>(c.in.data()), c.in.size()));
                c.in.clear();
            }
        } else if (line.empty()) {
            // Blank lines are ignored: `echo | socat` habits.
        } else {
            std::string shown;
            for (char ch : line.substr(0, 64)) shown += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
            c.out += "error: unknown command '" + shown +
                     "' (info, pause, resume, shutdown, destroy, console)\n\n";
        }
    } catch (const std::exception& e) {
        c.out += std::string("error: ") + e.what() + "\n\n";
    }
}

Fd open_console_input(const std::filesystem::path& socket) {
    const sockaddr_un addr = address(socket);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) throw_errno("socket");
    const timeval limit{2, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        throw_errno("connect " + socket.string());
    }
    const std::string request = "console-input\n";
    if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        throw_errno("send");
    }
    std::string head;
    char c;
    while (head.size() < 512 && head.find("\n\n") == std::string::npos) {
        const ssize_t n = ::recv(fd.get(), &c, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error("no reply from " + socket.string());
        head += c;
    }
    if (head != "ok\n\n") throw std::runtime_error(head.substr(0, head.find('\n')));
    const int flags = ::fcntl(fd.get(), F_GETFL);
    ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
    return fd;
}

ControlReply control_request(const std::filesystem::path& socket, const std::string& command) {
    const sockaddr_un addr = address(socket);
    const Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) throw_errno("socket");
    // A guest process that is stopped or wedged must not hang the caller (ukvmd's loop).
    const timeval limit{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        throw_errno("connect " + socket.string());
    }
    const std::string request = command + "\n";
    if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        throw_errno("send");
    }
    std::string text;
    char buf[4096];
    while (text.find("\n\n") == std::string::npos) {
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("recv");
        }
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > 65536) throw std::runtime_error("control reply too long");
    }
    ControlReply r;
    std::size_t start = 0;
    bool first = true;
    while (start < text.size()) {
        const std::size_t nl = text.find('\n', start);
        if (nl == std::string::npos) break;
        std::string line = text.substr(start, nl - start);
        start = nl + 1;
        if (line.empty()) break;
        if (first) {
            first = false;
            r.ok = line == "ok";
            if (!r.ok) r.error = line.rfind("error: ", 0) == 0 ? line.substr(7) : line;
            continue;
        }
        r.lines.push_back(line);
    }
    if (first) {
        r.ok = false;
        r.error = "the control socket closed without replying";
    }
    return r;
}

namespace {

bool send_all(int fd, const char* data, std::size_t len) {
    while (len > 0) {
        const ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

bool write_all_fd(int fd, const char* data, std::size_t len) {
    while (len > 0) {
        const ssize_t n = ::write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

// `ukvm ctl SOCKET console`: the terminal (or a pipe) becomes the guest console. On a
// terminal, Ctrl-] detaches; from a pipe, input ends at EOF and output is shown until the
// guest has been quiet for a second.
int attach_console(const std::filesystem::path& socket, bool handshake, std::ostream& err) {
    const sockaddr_un addr = address(socket);
    const Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) throw_errno("socket");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        throw_errno("connect " + socket.string());
    }
    std::string head = handshake ? "" : "ok\n\n";  // a console socket is raw from the start
    if (handshake && !send_all(fd.get(), "console\n", 8)) throw_errno("send");
    char c;
    while (head.size() < 512 && head.find("\n\n") == std::string::npos) {
        const ssize_t n = ::recv(fd.get(), &c, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            err << "ukvm: the control socket closed without replying\n";
            return 1;
        }
        head += c;
    }
    if (head != "ok\n\n") {
        const std::string line = head.substr(0, head.find('\n'));
        err << "ukvm: " << (line.rfind("error: ", 0) == 0 ? line.substr(7) : line) << "\n";
        return 1;
    }
    const bool tty = ::isatty(STDIN_FILENO) == 1;
    if (tty)
        err << "ukvm: attached to the console of " << socket.string() << " (Ctrl-] detaches)\r\n"
            << std::flush;
    RawTerminal raw(STDIN_FILENO);
    bool input_open = true;
    char buf[4096];
    for (;;) {
        pollfd fds[2] = {{fd.get(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        const int r = ::poll(fds, input_open ? 2 : 1, input_open ? -1 : 1000);
        if (r < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        if (r == 0) return 0;  // input ended and the guest has said nothing for a second
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
                if (tty) err << "\r\nukvm: the guest's console closed\r\n";
                return 0;
            }
            if (n > 0 && !write_all_fd(STDOUT_FILENO, buf, static_cast<std::size_t>(n))) return 1;
        }
        if (input_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                input_open = false;
                continue;
            }
            std::size_t len = static_cast<std::size_t>(n);
            bool detach = false;
            if (tty) {
                if (const void* esc = std::memchr(buf, 0x1d, len)) {  // Ctrl-]
                    len = static_cast<std::size_t>(static_cast<const char*>(esc) - buf);
                    detach = true;
                }
            }
            if (!send_all(fd.get(), buf, len)) return 1;
            if (detach) {
                err << "\r\nukvm: detached\r\n";
                return 0;
            }
        }
    }
}

}  // namespace

int cli_ctl(const std::filesystem::path& socket, const std::string& command, std::ostream& out,
            std::ostream& err) {
    if (command == "console" || command == "attach") {
        try {
            return attach_console(socket, command == "console", err);
        } catch (const std::exception& e) {
            err << "ukvm: " << e.what() << "\n";
            return 1;
        }
    }
    try {
        const ControlReply r = control_request(socket, command);
        if (!r.ok) {
            err << "ukvm: " << r.error << "\n";
            return 1;
        }
        for (const std::string& line : r.lines) out << line << "\n";
        return 0;
    } catch (const std::exception& e) {
        err << "ukvm: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace ukvm::control
