// The vnet test guest (a flat ring-3 IPv4 responder with no TCP/IP stack) on virtio-net:
// a tap in a network namespace the test creates, the built-in switch between guests, the
// user (slirp) backend, and misbehaving drivers and peers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

fs::path vnet_kernel() {
    return fs::path(UKVM_GUEST_DIR) / "tests" / "guests" / "vnet.elf";
}

// Single-quoted for sh.
std::string sh_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

class VirtioNet : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
        ASSERT_TRUE(fs::exists(vnet_kernel())) << vnet_kernel() << " is missing: build the guests";
        std::string templ = (fs::temp_directory_path() / "ukvm-net-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // Writes NAME.toml for the vnet guest with one [[net]] table holding `net`.
    fs::path guest(const std::string& name, const std::string& cmdline, const std::string& net) {
        const fs::path file = dir_ / (name + ".toml");
        std::ofstream(file) << "name = '" << name << "'\nkernel = '" << vnet_kernel().string()
                            << "'\ncmdline = '" << cmdline << "'\n[console]\ninput = 'none'\n"
                            << "[[net]]\n"
                            << net;
        return file;
    }

    // Runs a shell script in a new network namespace (skips when that is not permitted).
    ProcessResult in_netns(const std::string& script,
                           std::chrono::milliseconds timeout = std::chrono::seconds(90)) {
        ProcessOptions options;
        options.timeout = timeout;
        options.env = {{"UKVM", UKVM_BINARY}, {"DIR", dir_.string()}};
        return run_process({"unshare", "-n", "sh", "-c", "ip link set lo up && " + script},
                           options);
    }
    bool netns_usable(std::string& why) {
        if (ukvm::test::find_program("unshare").empty() || ukvm::test::find_program("ip").empty()) {
            why = "unshare or ip (util-linux, iproute2) is not installed";
            return false;
        }
        const ProcessResult r = run_process(
            {"unshare", "-n", "sh", "-c", "ip tuntap add dev t0 mode tap && ip link set t0 up"});
        if (r.status != 0) {
            why = "cannot create a network namespace with a tap here: " + r.err;
            return false;
        }
        return true;
    }

    fs::path dir_;
};

#define SKIP_WITHOUT_NETNS()                                        \
    do {                                                            \
        std::string why;                                            \
        if (!netns_usable(why)) GTEST_SKIP() << why;                \
        if (ukvm::test::find_program("ping").empty())               \
            GTEST_SKIP() << "ping (iputils-ping) is not installed"; \
    } while (0)

TEST_F(VirtioNet, HostPingsGuestAndGuestPingsHostOverAnExistingTap) {
    SKIP_WITHOUT_NETNS();
    const fs::path toml = guest("vnet", "ip=10.0.0.2 ping=10.0.0.1 count=3 time=8",
                                "backend = 'tap'\nifname = 'vt0'\n");
    const ProcessResult r = in_netns(
        "ip tuntap add dev vt0 mode tap && ip addr add 10.0.0.1/24 dev vt0 && "
        "ip link set vt0 up && { \"$UKVM\" run " +
        sh_quote(toml.string()) +
        " & } && sleep 1 && ping -c 3 -W 5 10.0.0.2; p=$?; wait $!; g=$?; "
        "echo \"ping=$p guest=$g\"");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("3 packets transmitted, 3 received")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("ping=0 guest=0")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("virtio-net at slot 1, irq line 16"));
    EXPECT_THAT(r.out, HasSubstr("status 1 mtu 1500"));
    EXPECT_THAT(r.out, HasSubstr("ping: 3 replies"));
    EXPECT_THAT(r.out, HasSubstr("served: arp"));
}

TEST_F(VirtioNet, UkvmCreatesATapOnABridge) {
    SKIP_WITHOUT_NETNS();
    const fs::path toml = guest("vnet", "ip=10.0.1.2 time=8",
                                "backend = 'tap'\nifname = 'uk0'\nbridge = 'br0'\n"
                                "mac = '52:54:00:aa:bb:cc'\n");
    // The bridge must exist when the config is read; the tap appears when ukvm starts.
    const ProcessResult r = in_netns(
        "ip link add br0 type bridge && ip addr add 10.0.1.1/24 dev br0 && ip link set br0 up "
        "&& { \"$UKVM\" run " +
        sh_quote(toml.string()) +
        " & } && for i in $(seq 50); do ip link show uk0 >/dev/null 2>&1 && break; sleep 0.1; "
        "done; ip -o link show uk0; ping -c 3 -W 5 10.0.1.2; p=$?; ip neigh show 10.0.1.2; "
        "wait $!; echo \"ping=$p guest=$?\"");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("master br0")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("3 packets transmitted, 3 received")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("52:54:00:aa:bb:cc")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("ping=0 guest=0")) << describe(r);
}

TEST_F(VirtioNet, CreatingATapWithoutCapNetAdminIsAClearError) {
    SKIP_WITHOUT_NETNS();
    if (ukvm::test::find_program("setpriv").empty()) GTEST_SKIP() << "setpriv is not installed";
    const fs::path toml = guest("vnet", "", "backend = 'tap'\nifname = 'nope0'\n");
    const ProcessResult r =
        in_netns("setpriv --bounding-set -net_admin --inh-caps -net_admin \"$UKVM\" run " +
                 sh_quote(toml.string()));
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("net[0].ifname: creating a tap device needs CAP_NET_ADMIN"));
}

TEST_F(VirtioNet, BadNetSettingsAreConfigErrorsNamingTheKey) {
    struct Case {
        std::string net;
        std::string error;
    };
    const Case cases[] = {
        {"backend = 'wire'\n", "net[0].backend: expected one of \"tap\", \"switch\", \"user\""},
        {"backend = 'tap'\nmac = '01:00:00:00:00:01'\n",
         "net[0].mac: \"01:00:00:00:00:01\" is a multicast"},
        {"backend = 'tap'\nmac = 'zz'\n", "net[0].mac: expected a MAC address"},
        {"backend = 'tap'\nifname = 'a/b'\n", "net[0].ifname: an interface name has no '/'"},
        {"backend = 'tap'\nbridge = 'nosuchbr9'\n", "net[0].bridge: there is no network interface"},
        {"backend = 'switch'\n", "net[0].switch: required with backend = \"switch\""},
        {"backend = 'switch'\nswitch = '../x'\n", "net[0].switch: a switch name uses only"},
        {"backend = 'user'\nswitch = 'lan'\n",
         "net[0].switch: only allowed with backend = \"switch\""},
        {"backend = 'user'\nhostfwd = ['tcp:8080']\n", "net[0].hostfwd[0]: expected \"tcp|udp:"},
        {"backend = 'user'\nhostfwd = 'tcp:99999-:80'\n", "net[0].hostfwd: host port '99999'"},
        {"backend = 'user'\nhostfwd = ['tcp:80-:80', 'tcp::80-:81']\n", "uses the host port"},
        {"backend = 'user'\ncolour = 1\n", "net[0].colour: unknown key"},
    };
    for (const Case& c : cases) {
        const fs::path toml = guest("bad", "", c.net);
        const ProcessResult r = run_process({UKVM_BINARY, "validate", toml.string()});
        EXPECT_EQ(r.status, 2) << c.net << describe(r);
        EXPECT_THAT(r.err, HasSubstr(c.error)) << c.net;
        EXPECT_THAT(r.err, HasSubstr("bad.toml:")) << c.net;
    }
}

}  // namespace
