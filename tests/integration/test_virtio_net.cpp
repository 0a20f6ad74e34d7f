// The vnet test guest (a flat ring-3 IPv4 responder with no TCP/IP stack) on virtio-net:
// a tap in a network namespace the test creates, the built-in switch between guests, the
// user (slirp) backend, and misbehaving drivers and peers.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

TEST_F(VirtioNet, OversizedFramesFromTheTapAreDropped) {
    SKIP_WITHOUT_NETNS();
    if (ukvm::test::find_program("python3").empty()) GTEST_SKIP() << "python3 is not installed";
    const fs::path toml = guest("vnet", "ip=10.0.0.2 time=8", "backend = 'tap'\nifname = 'vt0'\n");
    // The host raises the tap's MTU and writes a 4000-byte and a 9000-byte frame into it
    // with a packet socket, then pings: the guest must still answer. (The kernel refuses to
    // send frames shorter than an Ethernet header; the switch test sends those.)
    const std::string inject =
        "import socket\n"
        "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
        "s.bind(('vt0', 0))\n"
        "hdr = b'\\xff' * 6 + b'\\x02' * 6 + b'\\x88\\xb5'\n"
        "print('sent', s.send(hdr + b'x' * 3986), s.send(hdr + b'y' * 8986))\n";
    const ProcessResult r = in_netns(
        "ip tuntap add dev vt0 mode tap && ip link set vt0 mtu 9000 && "
        "ip addr add 10.0.0.1/24 dev vt0 && ip link set vt0 up && { \"$UKVM\" run " +
        sh_quote(toml.string()) + " & } && sleep 1 && python3 -c " + sh_quote(inject) +
        " && ping -c 2 -W 5 10.0.0.2; p=$?; wait $!; echo \"ping=$p guest=$?\"");
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("sent 4000 9000")) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("dropped a 4000-byte frame: received frame longer than 1514"))
        << describe(r);
    EXPECT_THAT(r.err, HasSubstr("dropped a 9000-byte frame")) << describe(r);
    EXPECT_THAT(r.out, HasSubstr("ping=0 guest=0")) << describe(r);
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

// Runs ukvm on each config at once; returns the results in order.
std::vector<ProcessResult> run_together(const std::vector<fs::path>& configs) {
    std::vector<ProcessResult> results(configs.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < configs.size(); ++i) {
        threads.emplace_back([&, i] {
            ProcessOptions options;
            options.timeout = std::chrono::seconds(60);
            results[i] = run_process({UKVM_BINARY, "run", configs[i].string()}, options);
        });
    }
    for (auto& t : threads) t.join();
    return results;
}

TEST_F(VirtioNet, TwoGuestsOnASwitchPingAndAThirdOnAnotherSeesNothing) {
    const std::string sw = "switch_dir = '" + (dir_ / "switches").string() + "'\n";
    const fs::path a =
        guest("a", "ip=10.1.0.1 time=8", "backend = 'switch'\nswitch = 'lan'\n" + sw);
    const fs::path b = guest("b", "ip=10.1.0.2 ping=10.1.0.1 count=3 time=8",
                             "backend = 'switch'\nswitch = 'lan'\n" + sw);
    const fs::path c = guest("c", "ip=10.1.0.3 ping=10.1.0.1 count=1 time=8",
                             "backend = 'switch'\nswitch = 'other'\n" + sw);
    const auto r = run_together({a, b, c});
    EXPECT_EQ(r[0].status, 0) << describe(r[0]);
    EXPECT_THAT(r[0].out, HasSubstr("served: arp 1 icmp 3")) << describe(r[0]);
    EXPECT_EQ(r[1].status, 0) << describe(r[1]);
    EXPECT_THAT(r[1].out, HasSubstr("ping: 3 replies")) << describe(r[1]);
    // Its ARP requests went nowhere and nothing came in.
    EXPECT_EQ(r[2].status, 1) << describe(r[2]);
    EXPECT_THAT(r[2].out, HasSubstr("seen 0 frames")) << describe(r[2]);
    EXPECT_THAT(r[2].out, HasSubstr("ping: 0 replies")) << describe(r[2]);
    // Every port removed its socket on the way out.
    EXPECT_TRUE(fs::is_empty(dir_ / "switches" / "lan"));
}

// A test-owned port on a switch: sends raw datagrams as a hostile peer would.
class SwitchPort {
public:
    explicit SwitchPort(const fs::path& dir) : path_(dir / "0000000000aa.sock") {
        fs::create_directories(dir);
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const sockaddr_un addr = address(path_);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
        const int size = 1 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    ~SwitchPort() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    static sockaddr_un address(const fs::path& p) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", p.c_str());
        return addr;
    }
    bool send(const fs::path& to, const std::string& bytes) {
        const sockaddr_un addr = address(to);
        return ::sendto(fd_, bytes.data(), bytes.size(), 0,
                        reinterpret_cast<const sockaddr*>(&addr),
                        sizeof addr) == static_cast<ssize_t>(bytes.size());
    }
    // Every frame that arrived, without waiting.
    std::vector<std::string> drain() {
        std::vector<std::string> frames;
        char buf[2048];
        for (;;) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0) return frames;
            frames.emplace_back(buf, static_cast<std::size_t>(n));
        }
    }

private:
    fs::path path_;
    int fd_ = -1;
};

// An ARP request from 52:54:00:00:00:aa (10.1.0.9) for ip.
std::string arp_request(unsigned char last_octet) {
    std::string f(60, '\0');
    const unsigned char head[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0,         0, 0,
                                  0xaa, 0x08, 0x06, 0,    1,    0x08, 0,    6,    4,         0, 1,
                                  0x52, 0x54, 0,    0,    0,    0xaa, 10,   1,    0,         9, 0,
                                  0,    0,    0,    0,    0,    10,   1,    0,    last_octet};
    f.replace(0, sizeof head, reinterpret_cast<const char*>(head), sizeof head);
    return f;
}

bool waits_for(const fs::path& p) {
    for (int i = 0; i < 100 && !fs::exists(p); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return fs::exists(p);
}

TEST_F(VirtioNet, HostileSwitchPeerFramesAreDroppedAndTheGuestStillAnswers) {
    const fs::path lan = dir_ / "switches" / "lan";
    SwitchPort peer(lan);
    const fs::path g = guest("g", "ip=10.1.0.1 time=5",
                             "backend = 'switch'\nswitch = 'lan'\nmac = '52:54:00:00:00:01'\n"
                             "switch_dir = '" +
                                 (dir_ / "switches").string() + "'\n");
    std::thread attacker([&] {
        const fs::path port = lan / "525400000001.sock";
        ASSERT_TRUE(waits_for(port));
        EXPECT_TRUE(peer.send(port, std::string(5, 'x')));         // truncated
        EXPECT_TRUE(peer.send(port, std::string(1515, '\xff')));   // one byte too long
        EXPECT_TRUE(peer.send(port, std::string(70000, '\xff')));  // far too long
        EXPECT_TRUE(peer.send(port, ""));                          // empty
        EXPECT_TRUE(peer.send(port, arp_request(1)));
    });
    const auto r = run_together({g});
    attacker.join();
    EXPECT_EQ(r[0].status, 0) << describe(r[0]);
    EXPECT_THAT(r[0].err, HasSubstr("dropped a 5-byte frame: received frame shorter"));
    EXPECT_THAT(r[0].err, HasSubstr("dropped a 1515-byte frame: received frame longer"));
    EXPECT_THAT(r[0].err, HasSubstr("dropped a 70000-byte frame"));
    EXPECT_THAT(r[0].out, HasSubstr("served: arp 1"));
    // The ARP reply came back to the port that asked (learned, not flooded).
    const auto frames = peer.drain();
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().substr(0, 6), std::string("\x52\x54\x00\x00\x00\xaa", 6));
    EXPECT_EQ(frames.back().substr(20, 2), std::string("\x00\x02", 2));  // ARP reply
}

TEST_F(VirtioNet, MisbehavingDriversGetNeedsResetAndTheDeviceWorksAfterReset) {
    struct Case {
        int bad;
        std::string reason;
    };
    const Case cases[] = {
        {1, "a buffer lies outside guest RAM; device needs reset"},
        {2, "a descriptor chain loops; device needs reset"},
        {3, "a virtio-net transmit chain has a device-writable buffer; device needs reset"},
        {4, "a virtio-net transmit chain is shorter than its 12-byte header; device needs reset"},
        {5, "the available ring names a descriptor beyond the table; device needs reset"},
        {6, "a virtio-net receive chain has a device-readable buffer; device needs reset"},
        {7, "dropped a 1515-byte frame: transmitted frame longer than 1514 bytes"},
    };
    for (const Case& c : cases) {
        const fs::path lan = dir_ / "switches" / "lan";
        SwitchPort peer(lan);
        const fs::path g = guest("g", "ip=10.1.0.1 bad=" + std::to_string(c.bad),
                                 "backend = 'switch'\nswitch = 'lan'\nmac = '52:54:00:00:00:01'\n"
                                 "switch_dir = '" +
                                     (dir_ / "switches").string() + "'\n");
        std::thread sender([&] {
            // Case 6 needs a frame to arrive in the read-only buffer.
            if (c.bad == 6 && waits_for(lan / "525400000001.sock")) {
                peer.send(lan / "525400000001.sock", arp_request(1));
            }
        });
        const auto r = run_together({g});
        sender.join();
        EXPECT_EQ(r[0].status, 0) << "bad=" << c.bad << describe(r[0]);
        EXPECT_THAT(r[0].err, HasSubstr(c.reason)) << "bad=" << c.bad;
        if (c.bad == 7) {
            EXPECT_THAT(r[0].err, HasSubstr("dropped a 5-byte frame: transmitted frame shorter"));
        }
        EXPECT_THAT(r[0].out, HasSubstr("after reset status 0xf")) << "bad=" << c.bad;
        // After the reset the device transmitted again: the guest's ARP request arrived.
        bool announced = false;
        for (const std::string& f : peer.drain()) {
            announced |= f.size() >= 42 && f.substr(12, 2) == std::string("\x08\x06", 2);
        }
        EXPECT_TRUE(announced) << "bad=" << c.bad;
    }
}

// A UDP or TCP socket bound to 127.0.0.1 on a free port.
struct LoopbackSocket {
    explicit LoopbackSocket(int type) {
        fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        timeval tv{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~LoopbackSocket() { ::close(fd); }
    int fd = -1;
    unsigned port = 0;
};

TEST_F(VirtioNet, UserBackendReachesAHostListenerAndAHostForwardReachesTheGuest) {
    LoopbackSocket listener(SOCK_DGRAM);
    unsigned fwd_port;
    {
        LoopbackSocket probe(SOCK_DGRAM);  // a port that was free a moment ago
        fwd_port = probe.port;
    }
    // The guest ARPs for the gateway (slirp answers), then sends one datagram to
    // 10.0.2.2:PORT, which slirp delivers to the host's loopback.
    const fs::path g =
        guest("u", "ip=10.0.2.15 udp=10.0.2.2 port=" + std::to_string(listener.port) + " time=8",
              "backend = 'user'\nhostfwd = ['udp:" + std::to_string(fwd_port) + "-:7']\n");
    std::string got, echo;
    std::thread host([&] {
        char buf[256];
        for (int i = 0; i < 8 && got.empty(); ++i) {
            const ssize_t n = ::recv(listener.fd, buf, sizeof buf, 0);
            if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
        }
        // Then through the forward to the guest's UDP echo on port 7 and back.
        LoopbackSocket client(SOCK_DGRAM);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        to.sin_port = htons(static_cast<std::uint16_t>(fwd_port));
        for (int i = 0; i < 5 && echo.empty(); ++i) {
            ::sendto(client.fd, "echo me", 7, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
            const ssize_t n = ::recv(client.fd, buf, sizeof buf, 0);
            if (n > 0) echo.assign(buf, static_cast<std::size_t>(n));
        }
    });
    const auto r = run_together({g});
    host.join();
    EXPECT_EQ(r[0].status, 0) << describe(r[0]);
    EXPECT_THAT(r[0].out, HasSubstr("arp: 10.0.2.2 is at 52:55:a:0:2:2")) << describe(r[0]);
    EXPECT_EQ(got, "hello from vnet") << describe(r[0]);
    EXPECT_EQ(echo, "echo me") << describe(r[0]);
    EXPECT_THAT(r[0].out, HasSubstr("udp 1;")) << describe(r[0]);
}

TEST_F(VirtioNet, AHostForwardOnAPortInUseIsAnErrorNamingTheKey) {
    LoopbackSocket taken(SOCK_STREAM);
    ASSERT_EQ(::listen(taken.fd, 1), 0);
    const std::string port = std::to_string(taken.port);
    const fs::path g = guest("u", "", "backend = 'user'\nhostfwd = 'tcp:" + port + "-:80'\n");
    const ProcessResult r = run_process({UKVM_BINARY, "run", g.string()});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_THAT(r.err, HasSubstr("net[0].hostfwd: cannot forward tcp 127.0.0.1:" + port));
}

}  // namespace
