// The per-guest control socket against a fake guest: every command, errors, console
// streaming both ways, bad requests, several clients, and the client helper.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "vmm/control/control_server.hpp"

namespace ukvm::control {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeGuest : public GuestControl {
public:
    GuestInfo info() override {
        GuestInfo i;
        i.name = "fake";
        i.state = paused ? "paused" : "running";
        i.uptime_ms = 1500;
        i.memory_mib = 64;
        i.vcpu_time_ns = 42;
        return i;
    }
    void pause() override {
        if (paused) throw ControlError("already paused");
        paused = true;
    }
    void resume() override {
        if (!paused) throw ControlError("not paused");
        paused = false;
    }
    void request_shutdown() override { shutdowns++; }
    void destroy() override { destroys++; }
    void console_input(std::span<const std::uint8_t> bytes) override {
        std::lock_guard lock(mutex);
        input.append(bytes.begin(), bytes.end());
    }
    std::string typed() {
        std::lock_guard lock(mutex);
        return input;
    }

    std::atomic<bool> paused{false};
    std::atomic<int> shutdowns{0};
    std::atomic<int> destroys{0};
    std::mutex mutex;
    std::string input;
};

class ControlTest : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> n{0};
        path_ = fs::temp_directory_path() /
                ("ukvm-ctl-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".sock");
        server_ = std::make_unique<ControlServer>(path_, guest_);
    }
    void TearDown() override { server_.reset(); }

    int connect_raw() {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        return fd;
    }

public:
    // Reads until `until` appears or the peer closes (2 s limit).
    static std::string read_until(int fd, const std::string& until) {
        std::string got;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (got.find(until) == std::string::npos &&
               std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            got.append(buf, static_cast<std::size_t>(n));
        }
        return got;
    }

protected:
    fs::path path_;
    FakeGuest guest_;
    std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlTest, InfoReportsTheGuest) {
    const ControlReply r = control_request(path_, "info");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_THAT(r.lines,
                ElementsAre("name: fake", "state: running", "uptime-ms: 1500", "memory-mib: 64",
                            "vcpu-time-ns: 42", "exit-reason: ", "pid: 0", "console-uart-bytes: 0",
                            "console-hypercall-bytes: 0", "console-virtio-bytes: 0"));
}

TEST_F(ControlTest, PauseResumeShutdownDestroy) {
    EXPECT_TRUE(control_request(path_, "pause").ok);
    EXPECT_TRUE(guest_.paused);
    EXPECT_THAT(control_request(path_, "info").lines, testing::Contains("state: paused"));
    const ControlReply again = control_request(path_, "pause");
    EXPECT_FALSE(again.ok);
    EXPECT_EQ(again.error, "already paused");
    EXPECT_TRUE(control_request(path_, "resume").ok);
    EXPECT_FALSE(guest_.paused);
    EXPECT_TRUE(control_request(path_, "shutdown").ok);
    EXPECT_EQ(guest_.shutdowns, 1);
    EXPECT_TRUE(control_request(path_, "destroy").ok);
    EXPECT_EQ(guest_.destroys, 1);
}

TEST_F(ControlTest, UnknownCommandsAndLongLinesAreErrors) {
    const ControlReply r = control_request(path_, "reboot\x01");
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("unknown command 'reboot?'"));
    const int fd = connect_raw();
    const std::string junk(1000, 'x');
    ASSERT_EQ(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), 1000);
    const std::string got = read_until(fd, "\n\n");
    EXPECT_THAT(got, HasSubstr("error: request longer than 256 bytes"));
    // ... and the server closes that connection.
    char c;
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1);
    EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
    ::close(fd);
    EXPECT_TRUE(control_request(path_, "info").ok);  // the server is fine
}

TEST_F(ControlTest, SeveralRequestsOnOneConnection) {
    const int fd = connect_raw();
    const std::string two = "info\r\nresume\n";
    ASSERT_EQ(::send(fd, two.data(), two.size(), MSG_NOSIGNAL), static_cast<ssize_t>(two.size()));
    const std::string got = read_until(fd, "error: not paused\n\n");
    EXPECT_THAT(got, HasSubstr("ok\nname: fake\n"));
    EXPECT_THAT(got, HasSubstr("error: not paused\n\n"));
    ::close(fd);
}

TEST_F(ControlTest, ConsoleStreamsBothWays) {
    const int a = connect_raw();
    const int b = connect_raw();
    for (int fd : {a, b}) {
        ASSERT_EQ(::send(fd, "console\n", 8, MSG_NOSIGNAL), 8);
        EXPECT_EQ(read_until(fd, "ok\n\n"), "ok\n\n");
    }
    const std::string hello = "hello from the guest\n";
    server_->console_output(
        std::span(reinterpret_cast<const std::uint8_t*>(hello.data()), hello.size()));
    EXPECT_EQ(read_until(a, hello), hello);
    EXPECT_EQ(read_until(b, hello), hello);
    ASSERT_EQ(::send(a, "ls\n", 3, MSG_NOSIGNAL), 3);
    for (int i = 0; i < 100 && guest_.typed() != "ls\n"; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(guest_.typed(), "ls\n");
    ::close(a);
    ::close(b);
    // A non-console client does not get console output.
    const int c = connect_raw();
    server_->console_output(
        std::span(reinterpret_cast<const std::uint8_t*>(hello.data()), hello.size()));
    ASSERT_EQ(::send(c, "info\n", 5, MSG_NOSIGNAL), 5);
    EXPECT_THAT(read_until(c, "\n\n"), testing::StartsWith("ok\nname: fake"));
    ::close(c);
}

TEST_F(ControlTest, CtlCommandPrintsTheReply) {
    std::ostringstream out, err;
    EXPECT_EQ(cli_ctl(path_, "info", out, err), 0);
    EXPECT_THAT(out.str(), testing::StartsWith("name: fake\nstate: running\n"));
    EXPECT_EQ(err.str(), "");
    out.str("");
    EXPECT_EQ(cli_ctl(path_, "resume", out, err), 1);
    EXPECT_EQ(err.str(), "ukvm: not paused\n");
    err.str("");
    EXPECT_EQ(cli_ctl(path_.string() + ".none", "info", out, err), 1);
    EXPECT_THAT(err.str(), HasSubstr("ukvm: connect "));
    EXPECT_EQ(out.str(), "");
}

TEST_F(ControlTest, OutputWhileNobodyIsAttachedWaitsForTheFirstConsole) {
    const std::string early = "boot log\nminix# ";
    server_->console_output(
        std::span(reinterpret_cast<const std::uint8_t*>(early.data()), early.size()));
    const int a = connect_raw();
    ASSERT_EQ(::send(a, "console\n", 8, MSG_NOSIGNAL), 8);
    EXPECT_EQ(read_until(a, early), "ok\n\n" + early);
    ::close(a);
    // Seen once: the next console starts with what comes after.
    const int b = connect_raw();
    ASSERT_EQ(::send(b, "console\n", 8, MSG_NOSIGNAL), 8);
    EXPECT_EQ(read_until(b, "ok\n\n"), "ok\n\n");
    ::close(b);
}

TEST(ConsoleOnlyServer, EveryConnectionIsAConsole) {
    FakeGuest guest;
    const fs::path path =
        fs::temp_directory_path() / ("ukvm-con-" + std::to_string(::getpid()) + ".sock");
    ControlServer server(path, guest, ServerMode::ConsoleOnly);
    const std::string text = "kept for later\n";
    server.write(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    for (int cycle = 0; cycle < 3; ++cycle) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        if (cycle == 0) {
            EXPECT_EQ(ControlTest::read_until(fd, text), text);
        }
        ASSERT_EQ(::send(fd, "info\n", 5, MSG_NOSIGNAL), 5);  // typed, not a request
        for (int i = 0; i < 100 && guest.typed().size() < 5u * (cycle + 1); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::close(fd);
    }
    EXPECT_EQ(guest.typed(), "info\ninfo\ninfo\n");
}

TEST(HookedGuestControl, MissingHooksAreErrorsNotCrashes) {
    int destroyed = 0;
    GuestControlHooks hooks;
    hooks.destroy = [&] { ++destroyed; };
    HookedGuestControl guest(std::move(hooks));
    const fs::path path =
        fs::temp_directory_path() / ("ukvm-ctl-hooks-" + std::to_string(::getpid()) + ".sock");
    ControlServer server(path, guest);
    EXPECT_TRUE(control_request(path, "destroy").ok);
    EXPECT_EQ(destroyed, 1);
    const ControlReply r = control_request(path, "pause");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "pause is not supported by this ukvm yet");
    EXPECT_FALSE(control_request(path, "info").ok);
}

TEST_F(ControlTest, SocketIsPrivateAndRemovedWithTheServer) {
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // A second server on a live socket is refused.
    FakeGuest other;
    EXPECT_THROW(ControlServer(path_, other), std::runtime_error);
    server_.reset();
    EXPECT_FALSE(fs::exists(path_));
    EXPECT_THROW(control_request(path_, "info"), std::system_error);
}

}  // namespace
}  // namespace ukvm::control
