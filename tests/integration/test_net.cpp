// The guest's network: INET (lwIP) and the socket library, booted for real in the
// MINIX-style system (configs/minix.toml with this build's images). Loopback sockets
// inside the guest (nettest: TCP echo of 512 KiB between two processes, UDP, refused and
// timed-out calls, per-owner sockets, ICMP echo through a raw socket).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "tests/integration/process.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ukvm::test::describe;
using ukvm::test::ProcessOptions;
using ukvm::test::ProcessResult;
using ukvm::test::run_process;

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The shipped config with its "../build/" paths pointing at this build's guests.
std::string minix_config() {
    std::string text = read_file(fs::path(UKVM_SOURCE_DIR) / "configs" / "minix.toml");
    const std::string from = "\"../build/";
    const std::string to = "\"" + std::string(UKVM_GUEST_DIR) + "/";
    for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
        text.replace(at, from.size(), to);
    return text;
}

// The "N passed, M failed" line a guest test program printed: {N, M}, or {-1, -1}.
std::pair<int, int> tally(const std::string& out, const std::string& program) {
    std::smatch m;
    std::regex re(program + ": ([0-9]+) passed, ([0-9]+) failed");
    if (!std::regex_search(out, m, re)) return {-1, -1};
    return {std::stoi(m[1]), std::stoi(m[2])};
}

class NetBoot : public ::testing::Test {
protected:
    void SetUp() override {
        config_ = minix_config();
        std::string templ = (fs::temp_directory_path() / "ukvm-net-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    ProcessResult run_ukvm(const std::string& input) {
        const fs::path file = dir_ / "minix.toml";
        std::ofstream(file) << config_;
        ProcessOptions options;
        options.timeout = std::chrono::seconds(120);
        options.input = input;
        options.has_input = true;
        return run_process({UKVM_BINARY, "run", file.string()}, options);
    }

    std::string config_;
    fs::path dir_;
};

#define REQUIRE_KVM()                                                                         \
    do {                                                                                      \
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable"; \
    } while (0)

TEST_F(NetBoot, LoopbackSocketsInsideTheGuest) {
    REQUIRE_KVM();
    const ProcessResult r = run_ukvm("nettest\npoweroff\n");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("inet: up")) << describe(r);
    auto [passed, failed] = tally(r.out, "nettest");
    EXPECT_GE(passed, 25) << describe(r);
    EXPECT_EQ(failed, 0) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("nettest: ok: the client got its 512 KiB back intact"));
    EXPECT_THAT(r.out, HasSubstr("nettest: ok: an echo reply from 127.0.0.1"));
    EXPECT_THAT(r.out, Not(HasSubstr("lwIP assertion")));
}

}  // namespace
