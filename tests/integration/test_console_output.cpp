// The guest console's output path in the MINIX-style system under /dev/kvm: with a
// virtio-console (configs/minix.toml) the shell's output goes TTY -> vcons -> transmitq, and
// the hypercall console only carries what the kernel and the servers print; with vcons
// killed mid-output RS restarts it and nothing is lost; without the device TTY writes
// through the hypercall console. The VMM's per-device byte counts (`info` on the control
// socket) tell the paths apart.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/minix_guest.hpp"
#include "vmm/control/control_server.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ukvm::control::control_request;
using ukvm::test::minix_config;
using ukvm::test::read_text;

constexpr const char* kPrompt = "minix# ";

// `ukvm run` in the background with its control socket and its console on a socket.
class ConsoleOutput : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = ukvm::test::make_temp_dir("ukvm-conout");
        ASSERT_FALSE(dir_.empty());
    }
    void TearDown() override {
        if (fd_ >= 0) ::close(fd_);
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        fs::remove_all(dir_);
    }
    fs::path api() const { return dir_ / "api.sock"; }
    fs::path log() const { return dir_ / "ukvm.log"; }

    // Boots config and connects to its console.
    void start(const std::string& config) {
        const fs::path file = dir_ / "guest.toml";
        const fs::path con = dir_ / "console.sock";
        std::ofstream(file) << config;
        std::vector<std::string> args = {
            UKVM_BINARY,    "run",       file.string(),           "--api-socket",
            api().string(), "--console", "socket:" + con.string()};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const std::string log_path = log().string();
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        for (int i = 0; i < 250 && !(fs::exists(api()) && fs::exists(con)); ++i)
            std::this_thread::sleep_for(20ms);
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, con.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
            << read_text(log());
    }
    // Reads the console until `until` appears after position `from` of everything read.
    bool read_until(const std::string& until, std::size_t from = 0,
                    std::chrono::milliseconds limit = 60s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (got_.find(until, from) == std::string::npos) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return got_.find(until, from) != std::string::npos;
            got_.append(buf, static_cast<std::size_t>(n));
        }
        return true;
    }
    // Types a line; reads until `until` shows after it.
    bool run(const std::string& line, const std::string& until) {
        const std::size_t from = got_.size();
        if (::send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != ssize_t(line.size()))
            return false;
        return read_until(until, from);
    }
    // The VMM's console byte counts (virtio, hypercall, uart).
    std::map<std::string, std::uint64_t> counts() {
        std::map<std::string, std::uint64_t> out;
        const auto r = control_request(api(), "info");
        for (const std::string& line : r.lines) {
            std::smatch m;
            if (std::regex_match(line, m, std::regex("console-([a-z]+)-bytes: ([0-9]+)")))
                out[m[1]] = std::stoull(m[2]);
        }
        return out;
    }

    fs::path dir_;
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string got_;
};

TEST_F(ConsoleOutput, TheShellsOutputGoesThroughTheVirtioConsole) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    ASSERT_TRUE(read_until(kPrompt)) << got_ << read_text(log());
    ASSERT_TRUE(read_until("vcons: console input and output now go through virtio-console"))
        << got_;
    const auto boot = counts();
    ASSERT_EQ(boot.size(), 3u);
    EXPECT_GT(boot.at("hypercall"), 0u);  // the kernel's and the servers' boot messages
    EXPECT_GT(boot.at("virtio"), 0u);     // vcons's greeting, the shell's banner and prompt
    // Commands whose output (and echo) is the shell's and its programs'.
    ASSERT_TRUE(run("echo marker-one\n", "marker-one\n" + std::string(kPrompt))) << got_;
    ASSERT_TRUE(run("help\n", kPrompt)) << got_;
    ASSERT_TRUE(run("conbench lines 200\n", "conbench: done\n" + std::string(kPrompt))) << got_;
    const auto after = counts();
    const std::uint64_t printed = got_.size();
    // Everything since the prompt came through the virtio-console, none of it through the
    // hypercall console or COM1.
    EXPECT_EQ(after.at("hypercall"), boot.at("hypercall")) << got_;
    EXPECT_EQ(after.at("uart"), boot.at("uart"));
    EXPECT_GT(after.at("virtio") - boot.at("virtio"), 200u * 20u);
    EXPECT_EQ(after.at("virtio") + after.at("hypercall") + after.at("uart"), printed) << got_;
    for (int i : {1, 100, 200})
        EXPECT_THAT(got_, HasSubstr("conbench line " + std::to_string(i) + " of 200\n"));
}

TEST_F(ConsoleOutput, AKilledVconsIsRestartedAndNoLineIsLost) {
    SKIP_WITHOUT_KVM();
    start(minix_config());
    ASSERT_TRUE(read_until(kPrompt)) << got_ << read_text(log());
    ASSERT_TRUE(run("conbench lines 400 vcons\n", "conbench: done\n" + std::string(kPrompt)))
        << got_;
    EXPECT_THAT(got_, HasSubstr("conbench: killed vcons"));
    ASSERT_TRUE(read_until("rs: vcons restarted")) << got_;
    // Every line, in order (a line the dead driver had taken but not sent may come twice).
    std::size_t at = 0;
    for (int i = 1; i <= 400; ++i) {
        const std::string line = "conbench line " + std::to_string(i) + " of 400\n";
        const std::size_t found = got_.find(line, at);
        ASSERT_NE(found, std::string::npos) << "line " << i << " missing:\n" << got_;
        at = found + line.size();
    }
    // The new vcons carries the console again.
    const auto before = counts();
    ASSERT_TRUE(run("echo after-the-restart\n", "after-the-restart\n" + std::string(kPrompt)))
        << got_;
    const auto after = counts();
    EXPECT_GT(after.at("virtio"), before.at("virtio"));
    EXPECT_EQ(after.at("hypercall"), before.at("hypercall")) << got_;
}

TEST_F(ConsoleOutput, WithoutTheDeviceTtyWritesThroughTheHypercallConsole) {
    SKIP_WITHOUT_KVM();
    start(std::regex_replace(minix_config(), std::regex("virtio = true"), "virtio = false"));
    ASSERT_TRUE(read_until(kPrompt)) << got_ << read_text(log());
    const auto boot = counts();
    ASSERT_TRUE(run("conbench lines 50\n", "conbench: done\n" + std::string(kPrompt))) << got_;
    const auto after = counts();
    EXPECT_EQ(after.at("virtio"), 0u);
    EXPECT_GT(after.at("hypercall") - boot.at("hypercall"), 50u * 20u);
    EXPECT_EQ(after.at("hypercall") + after.at("uart"), got_.size()) << got_;
}

}  // namespace
