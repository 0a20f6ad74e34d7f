// The per-guest control API of `ukvm run` (docs/control-api.md) against the real MINIX-style
// guest under /dev/kvm: info, pause and resume (the guest stops making progress and goes
// on), shutdown through the guest's PM (exit 0), destroy, console attach through the
// control socket and through `ukvm ctl`, malformed requests, and the console socket
// (`--console socket:PATH`) across attach/detach cycles.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/minix_guest.hpp"
#include "tests/integration/process.hpp"
#include "vmm/control/control_server.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ukvm::control::control_request;
using ukvm::control::ControlReply;
using ukvm::test::describe;
using ukvm::test::minix_config;  // without the shipped root disk: tests run at once
using ukvm::test::ProcessOptions;
using ukvm::test::ProcessResult;
using ukvm::test::read_text;
using ukvm::test::run_process;

constexpr const char* kPrompt = "minix# ";

// An idle guest without PM: it never answers a shutdown request.
std::string idle_config() {
    const fs::path g = UKVM_GUEST_DIR;
    return "name = \"idle\"\nmemory = 32\nkernel = \"" + (g / "guest-kernel/kernel.elf").string() +
           "\"\ncmdline = \"quiet=0\"\n[[module]]\npath = \"" +
           (g / "guest-servers/idle").string() + "\"\nargs = \"600000\"\n";
}

// A connected unix socket.
class Conn {
public:
    explicit Conn(const fs::path& path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~Conn() {
        if (fd_ >= 0) ::close(fd_);
    }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    bool ok() const { return ok_; }
    bool send(const std::string& s) {
        return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    }
    // Reads until `until` appears in everything read so far, the peer closes or `limit`.
    bool read_until(const std::string& until, std::chrono::milliseconds limit = 20s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (got.find(until) == std::string::npos) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return got.find(until) != std::string::npos;
            got.append(buf, static_cast<std::size_t>(n));
        }
        return true;
    }
    // Whatever arrives within `wait`.
    std::string drain(std::chrono::milliseconds wait) {
        const std::size_t before = got.size();
        read_until(std::string(1, '\0') + "never", wait);
        return got.substr(before);
    }
    std::string got;

private:
    int fd_ = -1;
    bool ok_ = false;
};

std::map<std::string, std::string> fields(const ControlReply& r) {
    std::map<std::string, std::string> out;
    for (const std::string& line : r.lines) {
        const auto colon = line.find(": ");
        if (colon == std::string::npos) {
            out[line.substr(0, line.find(':'))] = "";
        } else {
            out[line.substr(0, colon)] = line.substr(colon + 2);
        }
    }
    return out;
}

// One `ukvm run` in the background with its control socket and console socket in a
// temporary directory; killed at the end of the test if still running.
class ControlApi : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = ukvm::test::make_temp_dir("ukvm-ctl");
        ASSERT_FALSE(dir_.empty());
    }
    void TearDown() override {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        fs::remove_all(dir_);
    }
    fs::path api() const { return dir_ / "api.sock"; }
    fs::path con() const { return dir_ / "console.sock"; }
    fs::path log() const { return dir_ / "ukvm.log"; }

    // Starts the guest; waits for both sockets to accept connections.
    void start(const std::string& config, const std::vector<std::string>& extra = {}) {
        const fs::path file = dir_ / "guest.toml";
        std::ofstream(file) << config;
        std::vector<std::string> args = {UKVM_BINARY,
                                         "run",
                                         file.string(),
                                         "--api-socket",
                                         api().string(),
                                         "--console",
                                         "socket:" + con().string()};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const std::string log_path = log().string();
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            const int null = ::open("/dev/null", O_RDONLY);
            ::dup2(null, 0);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        for (int i = 0; i < 200; ++i) {
            if (fs::exists(api()) && fs::exists(con())) return;
            std::this_thread::sleep_for(20ms);
        }
        FAIL() << "the sockets did not appear:\n" << read_text(log());
    }
    // Waits for the guest process to end; its exit status, or -1 on timeout.
    int wait_exit(std::chrono::seconds limit = 30s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(20ms);
        }
        return -1;
    }
    // The console socket once the shell's prompt is there.
    std::unique_ptr<Conn> console_at_prompt() {
        auto c = std::make_unique<Conn>(con());
        EXPECT_TRUE(c->ok());
        EXPECT_TRUE(c->read_until(kPrompt, 60s)) << c->got << read_text(log());
        return c;
    }

    fs::path dir_;
    pid_t pid_ = -1;
};

TEST_F(ControlApi, InfoReportsTheRunningGuest) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    auto console = console_at_prompt();
    const ControlReply r = control_request(api(), "info");
    ASSERT_TRUE(r.ok) << r.error;
    auto f = fields(r);
    EXPECT_EQ(f["name"], "minix");
    EXPECT_EQ(f["state"], "running");
    EXPECT_EQ(f["memory-mib"], "64");
    EXPECT_EQ(f["pid"], std::to_string(pid_));
    EXPECT_EQ(f["exit-reason"], "");
    EXPECT_GT(std::stoull(f["uptime-ms"]), 0u);
    EXPECT_GT(std::stoull(f["vcpu-time-ns"]), 0u);
    // `ukvm ctl` prints the same lines.
    const ProcessResult ctl = run_process({UKVM_BINARY, "ctl", api().string(), "info"});
    EXPECT_EQ(ctl.status, 0) << describe(ctl);
    EXPECT_THAT(ctl.out, HasSubstr("state: running\n"));
}

TEST_F(ControlApi, PauseStopsTheGuestAndResumeContinues) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    auto console = console_at_prompt();
    ASSERT_TRUE(control_request(api(), "pause").ok);
    EXPECT_EQ(fields(control_request(api(), "info"))["state"], "paused");
    const ControlReply again = control_request(api(), "pause");
    EXPECT_FALSE(again.ok);
    EXPECT_EQ(again.error, "already paused");
    // No guest instruction runs: vCPU time stands still, typed input is not answered.
    const auto cpu0 = fields(control_request(api(), "info"))["vcpu-time-ns"];
    ASSERT_TRUE(console->send("echo while-paused\n"));
    const std::string during = console->drain(1500ms);
    EXPECT_THAT(during, Not(HasSubstr("while-paused"))) << during;
    auto info = fields(control_request(api(), "info"));
    // (A parked vCPU thread still takes the odd kick signal: microseconds, not a guest.)
    EXPECT_LT(std::stoull(info["vcpu-time-ns"]) - std::stoull(cpu0), 5'000'000u);
    EXPECT_GE(std::stoull(info["uptime-ms"]), 1500u);  // wall time since start
    // Resume: the queued line is read and answered.
    ASSERT_TRUE(control_request(api(), "resume").ok);
    EXPECT_TRUE(console->read_until("while-paused\n" + std::string(kPrompt))) << console->got;
    EXPECT_EQ(fields(control_request(api(), "info"))["state"], "running");
    const ControlReply not_paused = control_request(api(), "resume");
    EXPECT_FALSE(not_paused.ok);
    EXPECT_EQ(not_paused.error, "not paused");
    ASSERT_TRUE(console->send("echo after\n"));
    EXPECT_TRUE(console->read_until("after\n")) << console->got;
}

TEST_F(ControlApi, ShutdownIsACleanPoweroffThroughPm) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    auto console = console_at_prompt();
    const ProcessResult ctl = run_process({UKVM_BINARY, "ctl", api().string(), "shutdown"});
    EXPECT_EQ(ctl.status, 0) << describe(ctl);
    EXPECT_EQ(wait_exit(), 0) << read_text(log());
    console->read_until("never-printed", 2s);
    EXPECT_THAT(console->got, HasSubstr("pm: the host asked for a shutdown; powering off"));
    EXPECT_THAT(console->got, HasSubstr("pm halts the machine with status 0"));
    EXPECT_FALSE(fs::exists(api()));  // the socket goes with the process
}

// A clean shutdown warns the user processes first: SIGTERM, a grace period, then SIGKILL.
// `sigtest term` catches SIGTERM and says so; that line comes before PM powers off.
TEST_F(ControlApi, ShutdownSendsSigtermBeforePoweringOff) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    auto console = console_at_prompt();
    ASSERT_TRUE(console->send("sigtest term &\n"));
    ASSERT_TRUE(console->read_until("sigtest: waiting for SIGTERM\n")) << console->got;
    ASSERT_TRUE(control_request(api(), "shutdown").ok);
    EXPECT_EQ(wait_exit(), 0) << read_text(log());
    console->read_until("never-printed", 2s);
    const std::string& got = console->got;
    const auto caught = got.find("sigtest: caught SIGTERM, cleaning up");
    const auto off = got.find("pm: power off");
    ASSERT_NE(caught, std::string::npos) << got;
    ASSERT_NE(off, std::string::npos) << got;
    EXPECT_LT(caught, off) << got;
    // init is not told that its shell ended: it would only start another one.
    EXPECT_THAT(got, Not(HasSubstr("starting another"))) << got;
}

// The shell's `reboot` goes through PM to the kReboot hypercall: ukvm exits 4, which is
// how ukvmd tells a reboot from a power-off (docs/configuration.md).
TEST_F(ControlApi, RebootEndsWithTheResetStatus) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    auto console = console_at_prompt();
    ASSERT_TRUE(console->send("reboot\n"));
    EXPECT_EQ(wait_exit(), 4) << read_text(log());
    console->read_until("never-printed", 1s);
    EXPECT_THAT(console->got, HasSubstr("pm: reboot (requested by pid"));
    EXPECT_THAT(console->got, HasSubstr("pm reboots the machine"));
}

TEST_F(ControlApi, ShutdownWhilePausedHappensOnResume) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    auto console = console_at_prompt();
    ASSERT_TRUE(control_request(api(), "pause").ok);
    ASSERT_TRUE(control_request(api(), "shutdown").ok);
    EXPECT_EQ(fields(control_request(api(), "info"))["state"], "paused");
    EXPECT_EQ(wait_exit(1s), -1);  // nothing runs while paused
    ASSERT_TRUE(control_request(api(), "resume").ok);
    EXPECT_EQ(wait_exit(), 0) << read_text(log());
}

TEST_F(ControlApi, DestroyEndsAGuestThatIgnoresShutdown) {
    SKIP_WITHOUT_KVM();
    start(idle_config());
    // The idle guest has no PM: the request is taken, nothing happens.
    ASSERT_TRUE(control_request(api(), "shutdown").ok);
    EXPECT_EQ(fields(control_request(api(), "info"))["state"], "shutting-down");
    EXPECT_EQ(wait_exit(2s), -1);
    const ProcessResult ctl = run_process({UKVM_BINARY, "ctl", api().string(), "destroy"});
    EXPECT_EQ(ctl.status, 0) << describe(ctl);
    EXPECT_EQ(wait_exit(), 143) << read_text(log());
    EXPECT_FALSE(fs::exists(api()));
}

TEST_F(ControlApi, DestroyWhilePaused) {
    SKIP_WITHOUT_KVM();
    start(idle_config());
    ASSERT_TRUE(control_request(api(), "pause").ok);
    ASSERT_TRUE(control_request(api(), "destroy").ok);
    EXPECT_EQ(wait_exit(), 143) << read_text(log());
}

TEST_F(ControlApi, ConsoleAttachSeesThePromptAndTypes) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    // Wait for the prompt on the console socket, then detach: the control socket's own
    // console has kept everything since boot for its first client.
    console_at_prompt().reset();
    Conn c(api());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send("console\n"));
    ASSERT_TRUE(c.read_until(std::string("ok\n\n")));
    EXPECT_EQ(c.got.rfind("ok\n\n", 0), 0u) << c.got;
    EXPECT_TRUE(c.read_until(kPrompt)) << c.got;
    ASSERT_TRUE(c.send("echo typed-through-the-api\n"));
    EXPECT_TRUE(c.read_until("\ntyped-through-the-api\n")) << c.got;
    // `ukvm ctl SOCKET console` from a pipe: types the line, shows the answer.
    ProcessOptions o;
    o.input = "echo via-ukvm-ctl\n";
    o.has_input = true;
    o.timeout = 30s;
    const ProcessResult ctl = run_process({UKVM_BINARY, "ctl", api().string(), "console"}, o);
    EXPECT_EQ(ctl.status, 0) << describe(ctl);
    EXPECT_THAT(ctl.out, HasSubstr("via-ukvm-ctl\n")) << describe(ctl);
}

TEST_F(ControlApi, MalformedRequestsGetErrorsAndTheGuestGoesOn) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    auto console = console_at_prompt();
    {
        Conn c(api());
        ASSERT_TRUE(c.send("reboot now\n"));
        EXPECT_TRUE(c.read_until("\n\n"));
        EXPECT_THAT(c.got, HasSubstr("error: unknown command 'reboot now'"));
    }
    {
        Conn c(api());
        ASSERT_TRUE(c.send(std::string("\x01\xff\x00garbage\n", 11)));
        EXPECT_TRUE(c.read_until("\n\n"));
        EXPECT_THAT(c.got, HasSubstr("error: unknown command"));
    }
    {
        Conn c(api());
        ASSERT_TRUE(c.send(std::string(5000, 'x')));
        EXPECT_TRUE(c.read_until("\n\n"));
        EXPECT_THAT(c.got, HasSubstr("error: request longer than 256 bytes"));
    }
    {
        Conn c(api());  // connects and goes away without a word
    }
    const ProcessResult bad = run_process({UKVM_BINARY, "ctl", api().string(), "explode"});
    EXPECT_EQ(bad.status, 2) << describe(bad);  // refused by the CLI, names the choices
    EXPECT_THAT(bad.err, HasSubstr("explode"));
    EXPECT_EQ(fields(control_request(api(), "info"))["state"], "running");
    ASSERT_TRUE(console->send("echo still-here\n"));
    EXPECT_TRUE(console->read_until("still-here\n")) << console->got;
}

TEST_F(ControlApi, ConsoleSocketAttachDetachCycles) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    console_at_prompt().reset();
    for (int i = 0; i < 3; ++i) {
        Conn c(con());
        ASSERT_TRUE(c.ok());
        const std::string word = "cycle-" + std::to_string(i);
        ASSERT_TRUE(c.send("echo " + word + "\n"));
        EXPECT_TRUE(c.read_until(word + "\n" + kPrompt)) << i << ": " << c.got;
    }
    // Output while nobody is attached is kept for the next client.
    {
        Conn c(con());
        ASSERT_TRUE(c.send("echo while-detached\n"));
    }
    std::this_thread::sleep_for(1500ms);
    Conn later(con());
    EXPECT_TRUE(later.read_until("while-detached\n")) << later.got;
    // `ukvm ctl SOCKET attach` is the same from the command line.
    ProcessOptions o;
    o.input = "echo via-attach\n";
    o.has_input = true;
    o.timeout = 30s;
    const ProcessResult ctl = run_process({UKVM_BINARY, "ctl", con().string(), "attach"}, o);
    EXPECT_EQ(ctl.status, 0) << describe(ctl);
    EXPECT_THAT(ctl.out, HasSubstr("via-attach\n")) << describe(ctl);
}

TEST(ControlCli, BadSocketOptionsAreUsageErrors) {
    const ProcessResult r = run_process(
        {UKVM_BINARY, "run", UKVM_SOURCE_DIR "/configs/minix.toml", "--console", "tcp:1234"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("--console: 'tcp:1234' is not one of"));
    const ProcessResult r2 = run_process({UKVM_BINARY, "run", UKVM_SOURCE_DIR "/configs/minix.toml",
                                          "--api-socket", "/nonexistent-dir/x.sock"});
    EXPECT_EQ(r2.status, 2) << describe(r2);
    EXPECT_THAT(r2.err, HasSubstr("directory '/nonexistent-dir' does not exist"));
}

}  // namespace
