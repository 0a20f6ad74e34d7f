// The MINIX-style system (configs/minix.toml) as the integration tests boot it: the shipped
// config pointed at this build's guest images, booted under ukvm with a script on the
// console, or the same images under QEMU, or driven interactively (Interactive).
// Header-only, next to process.hpp.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/process.hpp"

// Skips the test, saying why, when /dev/kvm cannot be used.
#define SKIP_WITHOUT_KVM()                                                                    \
    do {                                                                                      \
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable"; \
    } while (0)

namespace ukvm::test {

// A file's bytes (empty if it cannot be read).
inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The shipped configs/minix.toml with its "../build/" paths pointing at this build's guests
// and without the shipped root disk: the build's one image would be locked by each of the
// tests running at once, so a test that wants a disk appends its own [[disk]].
inline std::string minix_config() {
    std::string text = read_text(std::filesystem::path(UKVM_SOURCE_DIR) / "configs" / "minix.toml");
    const std::string from = "\"../build/";
    const std::string to = "\"" + std::string(UKVM_GUEST_DIR) + "/";
    for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
        text.replace(at, from.size(), to);
    return std::regex_replace(text, std::regex("\\[\\[disk\\]\\]\npath = \"[^\"]*\"\n"), "");
}

// A domain XML shipped in configs/ (minix-domain.xml, hello-domain.xml) with its /opt/ukvm
// paths pointing at this build's guests.
inline std::string shipped_domain_xml(const std::string& file) {
    std::string xml = read_text(std::filesystem::path(UKVM_SOURCE_DIR) / "configs" / file);
    const std::string from = "/opt/ukvm", to = UKVM_GUEST_DIR;
    for (size_t at = 0; (at = xml.find(from, at)) != std::string::npos; at += to.size())
        xml.replace(at, from.size(), to);
    return xml;
}

// The values of a config's `key = "..."` lines, in order.
inline std::vector<std::string> config_values(const std::string& config, const std::string& key) {
    std::vector<std::string> out;
    std::regex re("^" + key + " = \"([^\"]*)\"$");
    std::istringstream in(config);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_match(line, m, re)) out.push_back(m[1]);
    }
    return out;
}

// Puts args in front of the boot arguments of config's module guest-servers/NAME; false if
// config has no such module.
inline bool add_module_args(std::string& config, const std::string& name, const std::string& args) {
    const std::string module = "guest-servers/" + name + "\"\nargs = \"";
    const size_t at = config.find(module);
    if (at == std::string::npos) return false;
    config.insert(at + module.size(), args);
    return true;
}

// RS also supervises the services named in args (its boot arguments, NAME:PROGRAM:ARG or
// a program name); false if config has no RS module.
inline bool add_rs_args(std::string& config, const std::string& args) {
    return add_module_args(config, "rs", args);
}

// A fresh directory under the system's temporary directory, named prefix-XXXXXX; empty if
// it could not be made.
inline std::filesystem::path make_temp_dir(const std::string& prefix) {
    std::string templ = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) return {};
    return templ;
}

// Writes config to file and boots it under ukvm, `input` typed on the guest's console (then
// the script's steps: input written once the console shows what each waits for).
inline ProcessResult run_minix(const std::filesystem::path& file, const std::string& config,
                               const std::string& input,
                               std::chrono::milliseconds timeout = std::chrono::seconds(120),
                               std::vector<ProcessOptions::Step> script = {}) {
    std::ofstream(file) << config;
    ProcessOptions options;
    options.timeout = timeout;
    options.input = input;
    options.has_input = true;
    options.script = std::move(script);
    return run_process({UKVM_BINARY, "run", file.string()}, options);
}

// QEMU's command line for config's kernel and modules (KVM, PC machine, 64 MiB, COM1 on
// stdio, isa-debug-exit so poweroff ends QEMU with (status << 1) | 1): each module with its
// args, as ukvm passes them; `extra` arguments (NICs, drives, devices) go last.
inline std::vector<std::string> minix_qemu_argv(const std::filesystem::path& qemu,
                                                const std::string& config,
                                                std::vector<std::string> extra = {}) {
    std::string initrd;
    static const std::regex path_re("^path = \"([^\"]*)\"$"), args_re("^args = \"([^\"]*)\".*");
    std::istringstream in(config);
    bool after_path = false;
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_match(line, m, path_re)) {
            initrd += (initrd.empty() ? "" : ",") + m[1].str();
            after_path = true;
            continue;
        }
        if (after_path && std::regex_match(line, m, args_re) && m[1].length() > 0)
            initrd += " " + m[1].str();
        after_path = false;
    }
    std::vector<std::string> argv{qemu.string(), "-enable-kvm",
                                  "-M",          "pc",
                                  "-m",          "64",
                                  "-kernel",     config_values(config, "kernel").at(0),
                                  "-append",     config_values(config, "cmdline").at(0),
                                  "-initrd",     initrd,
                                  "-display",    "none",
                                  "-serial",     "stdio",
                                  "-monitor",    "none",
                                  "-device",     "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                  "-no-reboot"};
    argv.insert(argv.end(), std::make_move_iterator(extra.begin()),
                std::make_move_iterator(extra.end()));
    return argv;
}

// Boots config under QEMU (minix_qemu_argv, no NIC), `input` typed on the serial console;
// `extra` arguments (drives, devices) go last.
inline ProcessResult run_minix_qemu(const std::filesystem::path& qemu, const std::string& config,
                                    const std::string& input, std::vector<std::string> extra = {},
                                    std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    extra.insert(extra.begin(), {"-nic", "none"});
    ProcessOptions options;
    options.timeout = timeout;
    options.input = input;
    options.has_input = true;
    return run_process(minix_qemu_argv(qemu, config, std::move(extra)), options);
}

// A guest (ukvm or QEMU) driven interactively: its console output is collected by a
// thread, input is sent when the test decides, and wait_for() waits for text to appear.
class Interactive {
public:
    explicit Interactive(const std::vector<std::string>& argv) {
        int in[2], out[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 ||
            ::pipe2(out, O_CLOEXEC) != 0)
            throw std::runtime_error("pipes");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::setpgid(0, 0);
            ::dup2(in[1], 0);
            ::dup2(out[1], 1);
            ::dup2(out[1], 2);
            std::vector<char*> a;
            for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
            a.push_back(nullptr);
            ::execvp(a[0], a.data());
            ::_exit(127);
        }
        ::close(in[1]);
        ::close(out[1]);
        in_ = in[0];
        out_ = out[0];
        reader_ = std::thread([this] {
            char buf[4096];
            for (ssize_t n; (n = ::read(out_, buf, sizeof buf)) > 0;) {
                std::lock_guard<std::mutex> lock(mutex_);
                text_.append(buf, static_cast<size_t>(n));
            }
        });
    }
    ~Interactive() {
        if (pid_ > 0 && !reaped_) {
            ::kill(-pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (reader_.joinable()) reader_.join();
        ::close(in_);
        ::close(out_);
    }
    Interactive(const Interactive&) = delete;
    Interactive& operator=(const Interactive&) = delete;

    void send(const std::string& s) { (void)!::send(in_, s.data(), s.size(), MSG_NOSIGNAL); }
    pid_t pid() const { return pid_; }
    std::string output() {
        std::lock_guard<std::mutex> lock(mutex_);
        return text_;
    }
    // Waits until the output holds what (after the first `after` bytes).
    bool wait_for(const std::string& what, int seconds, size_t after = 0) {
        return wait_until(seconds, [&] { return text_.find(what, after) != std::string::npos; });
    }
    // Waits until the output holds what (after `after`) and the rest of that line: a
    // result line such as "echoc: N bytes echoed intact" is checked only when complete
    // (QEMU's UART delivers it a few bytes at a time).
    bool wait_line(const std::string& what, int seconds, size_t after = 0) {
        return wait_until(seconds, [&] {
            size_t at = text_.find(what, after);
            return at != std::string::npos && text_.find('\n', at) != std::string::npos;
        });
    }
    // Waits for the process to end (killing it after seconds): its exit status or -1.
    int finish(int seconds) {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > until) {
                ::kill(-pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                reaped_ = true;
                return -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    // Polls done() (under the lock) until it holds or seconds have passed.
    template <typename Done>
    bool wait_until(int seconds, Done done) {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (done()) return true;
            }
            if (std::chrono::steady_clock::now() >= until) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    pid_t pid_ = -1;
    bool reaped_ = false;
    int in_ = -1, out_ = -1;
    std::thread reader_;
    std::mutex mutex_;
    std::string text_;
};

}  // namespace ukvm::test
