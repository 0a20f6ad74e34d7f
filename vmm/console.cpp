#include "vmm/console.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace ukvm {

namespace {

void write_all(int fd, std::span<const std::uint8_t> bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // a closed pipe or full disk must not stop the guest
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
}

}  // namespace

void Console::write(std::span<const std::uint8_t> bytes) {
    emit(bytes, nullptr);
}

void Console::SourceSink::write(std::span<const std::uint8_t> bytes) {
    switch (source_) {
        case ConsoleSource::Uart:
            return console_.emit(bytes, &ConsoleCounts::uart);
        case ConsoleSource::Hypercall:
            return console_.emit(bytes, &ConsoleCounts::hypercall);
        case ConsoleSource::Virtio:
            return console_.emit(bytes, &ConsoleCounts::virtio);
    }
}

void Console::emit(std::span<const std::uint8_t> bytes, std::uint64_t ConsoleCounts::*counter) {
    std::lock_guard lock(output_mutex_);
    if (counter) counts_.*counter += bytes.size();
    output_.write(bytes);
    for (ConsoleSink* l : listeners_) l->write(bytes);
}

ConsoleCounts Console::counts() const {
    std::lock_guard lock(output_mutex_);
    return counts_;
}

void Console::set_input(InputFn device) {
    std::lock_guard lock(input_mutex_);
    device_ = std::move(device);
}

void Console::input(std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(input_mutex_);
    if (device_) device_(bytes);
}

void Console::attach(ConsoleSink& listener) {
    std::lock_guard lock(output_mutex_);
    listeners_.push_back(&listener);
}

void Console::detach(ConsoleSink& listener) {
    std::lock_guard lock(output_mutex_);
    std::erase(listeners_, &listener);
}

ConsoleOutputSink::ConsoleOutputSink(const ConsoleConfig& config) : kind_(config.output) {
    if (kind_ == ConsoleOutput::File) {
        int fd = ::open(config.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw KvmError("open console file " + config.file.string(), errno);
        file_.reset(fd);
    }
}

void ConsoleOutputSink::write(std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    switch (kind_) {
        case ConsoleOutput::Stdout:
            write_all(STDOUT_FILENO, bytes);
            break;
        case ConsoleOutput::File:
            write_all(file_.get(), bytes);
            break;
        case ConsoleOutput::Null:
        case ConsoleOutput::Socket:  // served by the console socket (vmm/control/)
            break;
    }
}

RawTerminal::RawTerminal(int fd) : fd_(fd) {
    termios t{};
    if (::tcgetattr(fd, &t) != 0) return;  // not a terminal: nothing to change or restore
    saved_ = t;
    t.c_iflag &=
        ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~static_cast<tcflag_t>(OPOST);
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | IEXTEN);
    t.c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    ::tcsetattr(fd, TCSANOW, &t);
}

RawTerminal::~RawTerminal() {
    if (saved_) ::tcsetattr(fd_, TCSANOW, &*saved_);
}

InputReader::InputReader(int fd, std::function<void(std::span<const std::uint8_t>)> on_input)
    : fd_(fd), on_input_(std::move(on_input)) {
    int efd = ::eventfd(0, EFD_CLOEXEC);
    if (efd < 0) throw KvmError("eventfd", errno);
    stop_.reset(efd);
    thread_ = std::thread([this] { loop(); });
}

InputReader::~InputReader() {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
    thread_.join();
}

void InputReader::loop() {
    std::array<std::uint8_t, 256> buf{};
    for (;;) {
        std::array<pollfd, 2> fds{{{fd_, POLLIN, 0}, {stop_.get(), POLLIN, 0}}};
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        if (fds[0].revents == 0) continue;
        ssize_t n = ::read(fd_, buf.data(), buf.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return;  // EOF: the guest just sees no more input
        on_input_(std::span(buf.data(), static_cast<std::size_t>(n)));
    }
}

std::filesystem::path socket_option(const std::string& path, const std::string& option) {
    if (path.empty()) throw ConfigError(option + ": the socket path is empty");
    const std::filesystem::path p = std::filesystem::absolute(path).lexically_normal();
    if (p.string().size() > kMaxSocketPathBytes) {
        throw ConfigError(option + ": '" + p.string() + "' is longer than " +
                          std::to_string(kMaxSocketPathBytes) +
                          " bytes (a unix socket path's limit)");
    }
    std::error_code ec;
    if (!std::filesystem::is_directory(p.parent_path(), ec)) {
        throw ConfigError(option + ": directory '" + p.parent_path().string() + "' does not exist");
    }
    return p;
}

ConsoleConfig parse_console_option(const std::string& spec) {
    ConsoleConfig c;
    if (spec == "stdio") return c;
    if (spec == "null") {
        c.output = ConsoleOutput::Null;
        c.input = ConsoleInput::None;
        return c;
    }
    if (spec.starts_with("file:")) {
        c.output = ConsoleOutput::File;
        c.file = socket_option(spec.substr(5), "--console file:");  // same checks
        c.input = ConsoleInput::None;
        return c;
    }
    if (spec.starts_with("socket:")) {
        c.output = ConsoleOutput::Socket;
        c.socket = socket_option(spec.substr(7), "--console socket:");
        c.input = ConsoleInput::None;
        return c;
    }
    throw ConfigError("--console: '" + spec +
                      "' is not one of stdio, null, file:PATH, socket:PATH");
}

bool console_reads_stdin(const ConsoleConfig& config) {
    if (config.output == ConsoleOutput::Socket) return false;  // input comes from the socket
    switch (config.input) {
        case ConsoleInput::Stdin:
            return true;
        case ConsoleInput::None:
            return false;
        case ConsoleInput::Auto:
            return ::isatty(STDIN_FILENO) == 1;
    }
    return false;
}

}  // namespace ukvm
