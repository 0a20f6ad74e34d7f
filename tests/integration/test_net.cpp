// The guest's network: INET (lwIP), the socket library, the virtio-net driver and the
// network tools, booted for real in the MINIX-style system (configs/minix.toml with this
// build's images). Loopback sockets inside the guest (nettest: TCP echo of 512 KiB between
// two processes, UDP, refused and timed-out calls, per-owner sockets, ICMP echo through a
// raw socket); the guest on QEMU's virtio-net-pci with user networking: it pings the
// gateway, echoes through a TCP server on the host's loopback, and the host fetches a
// file from its httpd (served from the MFS disk) through a host forward with curl, byte
// for byte; killing the network driver in the middle of a TCP transfer.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include "tests/integration/minix_guest.hpp"
#include "tests/integration/process.hpp"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ukvm::test::add_module_args;
using ukvm::test::describe;
using ukvm::test::Interactive;
using ukvm::test::make_temp_dir;
using ukvm::test::ProcessOptions;
using ukvm::test::ProcessResult;
using ukvm::test::read_text;
using ukvm::test::run_minix;
using ukvm::test::run_process;

using ukvm::test::minix_config;  // without the shipped root disk: tests run at once

// The "N passed, M failed" line a guest test program printed: {N, M}, or {-1, -1}.
std::pair<int, int> tally(const std::string& out, const std::string& program) {
    std::smatch m;
    std::regex re(program + ": ([0-9]+) passed, ([0-9]+) failed");
    if (!std::regex_search(out, m, re)) return {-1, -1};
    return {std::stoi(m[1]), std::stoi(m[2])};
}

// A free TCP port on the host's loopback (bound and released).
uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// A TCP echo server on the host's loopback for one connection at a time, in a thread.
class HostEchoServer {
public:
    HostEchoServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(fd_, 4);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] {
            for (;;) {
                int c = ::accept(fd_, nullptr, nullptr);
                if (c < 0) return;
                char buf[65536];
                for (ssize_t n; (n = ::read(c, buf, sizeof buf)) > 0;) {
                    if (::send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
                    echoed_ += static_cast<size_t>(n);
                }
                ::close(c);
            }
        });
    }
    ~HostEchoServer() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    uint16_t port() const { return port_; }
    size_t echoed() const { return echoed_; }

private:
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<size_t> echoed_{0};
    std::thread thread_;
};

// httpd's /pattern/N content.
std::string http_pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(static_cast<uint8_t>(i * 7 + i / 251));
    return s;
}

class NetBoot : public ::testing::Test {
protected:
    void SetUp() override {
        config_ = minix_config();
        qemu_ = ukvm::test::find_program("qemu-system-x86_64");
        dir_ = make_temp_dir("ukvm-net-test");
        ASSERT_FALSE(dir_.empty());
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    ProcessResult run_ukvm(const std::string& input) {
        return run_minix(dir_ / "minix.toml", config_, input);
    }

    // QEMU running this image with a modern virtio-net-pci function on user networking
    // (guest 10.0.2.15/24, gateway and host 10.0.2.2), host port http -> guest port 80.
    std::vector<std::string> qemu_user_net(uint16_t http, const fs::path& disk = {}) {
        std::string config = config_;
        add_module_args(config, "inet", "ip=10.0.2.15/24 gw=10.0.2.2");
        std::vector<std::string> extra = {
            "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:" + std::to_string(http) + "-10.0.2.15:80",
            "-device", "virtio-net-pci,netdev=n0,disable-legacy=on"};
        if (!disk.empty())
            extra.insert(extra.end(),
                         {"-drive", "file=" + disk.string() + ",if=none,id=d0,format=raw",
                          "-device", "virtio-blk-pci,drive=d0,disable-legacy=on,addr=0x5"});
        return ukvm::test::minix_qemu_argv(qemu_, config, std::move(extra));
    }

    std::string config_;
    fs::path dir_;
    fs::path qemu_;
};

TEST_F(NetBoot, LoopbackSocketsInsideTheGuest) {
    SKIP_WITHOUT_KVM();
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

// The same image on QEMU with a virtio-net-pci function (modern only) and QEMU's user
// networking (guest 10.0.2.15, gateway and host 10.0.2.2): the driver and INET against
// a second, independent virtio-net implementation.
TEST_F(NetBoot, GuestOnQemuUserNetworkPingsEchoesAndServesHttp) {
    SKIP_WITHOUT_KVM();
    const fs::path curl = ukvm::test::find_program("curl");
    if (qemu_.empty() || curl.empty()) GTEST_SKIP() << "qemu-system-x86_64 or curl is not in PATH";
    // The guest's root file system holds the file httpd serves.
    const fs::path root = dir_ / "root";
    fs::create_directories(root / "www");
    std::string data(300000, '\0');
    uint32_t x = 12345;
    for (char& c : data) x = x * 1103515245 + 12345, c = static_cast<char>(x >> 23);
    std::ofstream(root / "www" / "data.bin", std::ios::binary) << data;
    const fs::path disk = dir_ / "disk.img";
    ProcessResult mk = run_process(
        {UKVM_BINARY, "image", "create", disk.string(), "--size", "8M", "--from", root.string()});
    ASSERT_EQ(mk.status, 0) << describe(mk);
    HostEchoServer echo;
    const uint16_t http = free_port();
    Interactive g(qemu_user_net(http, disk));
    ASSERT_TRUE(g.wait_for("minix# ", 60)) << g.output();
    EXPECT_THAT(g.output(), HasSubstr("inet: en0 on driver"));
    g.send("ping 10.0.2.2 2\n");
    ASSERT_TRUE(g.wait_line("--- 10.0.2.2:", 30)) << g.output();
    EXPECT_THAT(g.output(), HasSubstr("2 sent, 2 received")) << g.output();
    g.send("echoc 10.0.2.2 " + std::to_string(echo.port()) + " 200000\n");
    ASSERT_TRUE(g.wait_line("echoc: ", 60)) << g.output();
    EXPECT_THAT(g.output(), HasSubstr("echoc: 200000 bytes echoed intact")) << g.output();
    EXPECT_EQ(echo.echoed(), 200000u);
    g.send("httpd &\n");
    ASSERT_TRUE(g.wait_for("httpd: listening on port 80", 30)) << g.output();
    const std::string url = "http://127.0.0.1:" + std::to_string(http);
    const fs::path body = dir_ / "body";
    ProcessOptions o;
    o.timeout = std::chrono::seconds(60);
    ProcessResult c = run_process(
        {curl.string(), "-sS", "--max-time", "50", "-o", body.string(), url + "/www/data.bin"}, o);
    EXPECT_EQ(c.status, 0) << describe(c) << g.output();
    EXPECT_TRUE(read_text(body) == data) << "the file differs from the disk's";
    c = run_process(
        {curl.string(), "-sS", "--max-time", "50", "-o", body.string(), url + "/pattern/20000"}, o);
    EXPECT_TRUE(read_text(body) == http_pattern(20000)) << "the pattern differs";
    c = run_process({curl.string(), "-sS", "--max-time", "20", url + "/"}, o);
    EXPECT_THAT(c.out, HasSubstr("Hello from a ukvm guest")) << describe(c);
    c = run_process({curl.string(), "-sS", "-o", "/dev/null", "-w", "%{http_code}", url + "/nope"},
                    o);
    EXPECT_EQ(c.out, "404");
    g.send("poweroff\n");
    EXPECT_EQ(g.finish(30), (0 << 1) | 1) << g.output();  // isa-debug-exit: (status << 1) | 1
}

// The system for ukvm with a NIC: no disk (several guests run at once), INET's address
// as given, and the [[net]] table net.
std::string net_config(std::string config, const std::string& inet_args, const std::string& net) {
    size_t at = config.find("[[disk]]");
    if (at != std::string::npos) {
        size_t end = config.find("\n\n", at);
        config.erase(at, end == std::string::npos ? std::string::npos : end + 2 - at);
    }
    add_module_args(config, "inet", inet_args);
    at = config.find("[console]");
    return config.substr(0, at) + net + "\n" + config.substr(at);
}

// ukvm's own virtio-net device, when this ukvm has one: "" or why not.
std::string ukvm_net_missing(const fs::path& dir) {
    const fs::path file = dir / "probe.toml";
    std::ofstream(file) << net_config(minix_config(), "", "[[net]]\nbackend = \"user\"\n");
    ProcessResult r = run_process({UKVM_BINARY, "validate", file.string()});
    if (r.status == 0) return "";
    return "this ukvm has no [[net]] support: " + r.err;
}

class UkvmNet : public NetBoot {
protected:
    void SetUp() override {
        NetBoot::SetUp();
        SKIP_WITHOUT_KVM();
        if (std::string why = ukvm_net_missing(dir_); !why.empty()) GTEST_SKIP() << why;
    }
    // A guest under ukvm with inet_args and the [[net]] table net, interactively.
    std::unique_ptr<Interactive> start(const std::string& name, const std::string& inet_args,
                                       const std::string& net) {
        const fs::path file = dir_ / (name + ".toml");
        std::string config = net_config(config_, inet_args, net);
        config.replace(config.find("name = \"minix\""), 14, "name = \"" + name + "\"");
        std::ofstream(file) << config;
        return std::make_unique<Interactive>(
            std::vector<std::string>{UKVM_BINARY, "run", file.string()});
    }
};

// Two guests on one switch ping each other and echo over TCP; a third guest on another
// switch (same subnet) reaches neither.
TEST_F(UkvmNet, GuestsOnOneSwitchTalkAndAnotherSwitchIsApart) {
    const std::string dir = (dir_ / "switches").string();
    auto sw = [&](const std::string& name) {
        return "[[net]]\nbackend = \"switch\"\nswitch = \"" + name + "\"\nswitch_dir = \"" + dir +
               "\"\n";
    };
    fs::create_directories(dir);
    auto a = start("neta", "ip=10.9.0.1/24", sw("lan0"));
    auto b = start("netb", "ip=10.9.0.2/24", sw("lan0"));
    auto c = start("netc", "ip=10.9.0.3/24", sw("lan1"));
    for (auto* g : {a.get(), b.get(), c.get()})
        ASSERT_TRUE(g->wait_for("minix# ", 60)) << g->output();
    a->send("echod 7 &\n");
    ASSERT_TRUE(a->wait_for("echod: tcp port 7", 30)) << a->output();
    b->send("ping 10.9.0.1 2\n");
    ASSERT_TRUE(b->wait_line("--- 10.9.0.1:", 30)) << b->output();
    EXPECT_THAT(b->output(), HasSubstr("2 sent, 2 received"));
    b->send("echoc 10.9.0.1 7 100000\n");
    ASSERT_TRUE(b->wait_line("echoc: ", 60)) << b->output();
    EXPECT_THAT(b->output(), HasSubstr("echoc: 100000 bytes echoed intact")) << b->output();
    c->send("ping 10.9.0.1 2\n");
    ASSERT_TRUE(c->wait_line("--- 10.9.0.1:", 30)) << c->output();
    EXPECT_THAT(c->output(), HasSubstr("2 sent, 0 received")) << c->output();
    for (auto* g : {a.get(), b.get(), c.get()}) g->send("poweroff\n");
    EXPECT_EQ(a->finish(60), 0) << a->output();
    EXPECT_EQ(b->finish(60), 0) << b->output();
    EXPECT_EQ(c->finish(60), 0) << c->output();
}

// The user backend (libslirp): the guest reaches a TCP server on the host's loopback
// through the gateway, and a host forward reaches the guest's httpd.
TEST_F(UkvmNet, UserBackendReachesTheHostAndAForwardReachesTheGuest) {
    const fs::path curl = ukvm::test::find_program("curl");
    if (curl.empty()) GTEST_SKIP() << "curl is not in PATH";
    HostEchoServer echo;
    const uint16_t http = free_port();
    auto g =
        start("netuser", "ip=10.0.2.15/24 gw=10.0.2.2",
              "[[net]]\nbackend = \"user\"\nhostfwd = \"tcp:127.0.0.1:" + std::to_string(http) +
                  "-:80\"\n");
    for (int i = 0; i < 600 && !g->wait_for("minix# ", 0); ++i) {
        if (g->output().find("is not built yet") != std::string::npos)
            GTEST_SKIP() << "this ukvm: " << g->output();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(g->wait_for("minix# ", 1)) << g->output();
    g->send("echoc 10.0.2.2 " + std::to_string(echo.port()) + " 200000\n");
    ASSERT_TRUE(g->wait_line("echoc: ", 60)) << g->output();
    EXPECT_THAT(g->output(), HasSubstr("echoc: 200000 bytes echoed intact")) << g->output();
    EXPECT_EQ(echo.echoed(), 200000u);
    g->send("httpd &\n");
    ASSERT_TRUE(g->wait_for("httpd: listening on port 80", 30)) << g->output();
    const fs::path body = dir_ / "body";
    ProcessOptions o;
    o.timeout = std::chrono::seconds(60);
    ProcessResult c = run_process({curl.string(), "-sS", "--max-time", "50", "-o", body.string(),
                                   "http://127.0.0.1:" + std::to_string(http) + "/pattern/100000"},
                                  o);
    EXPECT_EQ(c.status, 0) << describe(c) << g->output();
    EXPECT_TRUE(read_text(body) == http_pattern(100000)) << "the body differs";
    g->send("poweroff\n");
    EXPECT_EQ(g->finish(60), 0) << g->output();
}

// Host <-> guest over a tap in a network namespace the test makes (unshare -n; skipped
// when that is not permitted): ukvm creates the tap, the host side gets 10.1.0.1/24;
// the host pings the guest and the guest the host, TCP echo both ways, and curl fetches
// httpd's pattern.
TEST_F(UkvmNet, HostAndGuestOverATapInANetworkNamespace) {
    const fs::path curl = ukvm::test::find_program("curl");
    if (curl.empty() || ukvm::test::find_program("unshare").empty() ||
        ukvm::test::find_program("nsenter").empty() || ukvm::test::find_program("ip").empty())
        GTEST_SKIP() << "curl, unshare, nsenter or ip is not installed";
    ProcessResult probe =
        run_process({"unshare", "-n", "sh", "-c", "ip tuntap add dev t0 mode tap"});
    if (probe.status != 0) GTEST_SKIP() << "no tap in a new network namespace: " << probe.err;
    const fs::path file = dir_ / "tap.toml";
    std::string config = net_config(config_, "ip=10.1.0.2/24 gw=10.1.0.1",
                                    "[[net]]\nbackend = \"tap\"\nifname = \"ukvmt0\"\n");
    std::ofstream(file) << config;
    Interactive g({"unshare", "-n", UKVM_BINARY, "run", file.string()});
    ASSERT_TRUE(g.wait_for("minix# ", 60)) << g.output();
    const std::string ns = "--net=/proc/" + std::to_string(g.pid()) + "/ns/net";
    auto host = [&](const std::vector<std::string>& cmd) {
        std::vector<std::string> argv = {"nsenter", ns, "--"};
        argv.insert(argv.end(), cmd.begin(), cmd.end());
        ProcessOptions o;
        o.timeout = std::chrono::seconds(60);
        return run_process(argv, o);
    };
    ProcessResult r = host({"sh", "-c",
                            "ip link set lo up && ip addr add 10.1.0.1/24 dev ukvmt0 && "
                            "ip link set ukvmt0 up"});
    ASSERT_EQ(r.status, 0) << describe(r);
    r = host({"ping", "-c", "2", "-W", "5", "10.1.0.2"});
    EXPECT_EQ(r.status, 0) << describe(r) << g.output();
    g.send("ping 10.1.0.1 2\n");
    ASSERT_TRUE(g.wait_line("--- 10.1.0.1:", 30)) << g.output();
    EXPECT_THAT(g.output(), HasSubstr("2 sent, 2 received")) << g.output();
    // TCP echo both ways: a host echo server (python3, in the namespace) for the guest's
    // echoc, and the guest's echod for a host client.
    const std::string server =
        "import socket\ns=socket.socket()\ns.bind(('10.1.0.1',7007))\ns.listen(1)\n"
        "print('listening',flush=True)\nc,_=s.accept()\nn=0\nwhile True:\n"
        "    d=c.recv(65536)\n    if not d: break\n    c.sendall(d); n+=len(d)\n"
        "print('echoed',n,flush=True)\n";
    Interactive srv({"nsenter", ns, "--", "python3", "-c", server});
    ASSERT_TRUE(srv.wait_for("listening", 20)) << srv.output();
    g.send("echoc 10.1.0.1 7007 100000\n");
    ASSERT_TRUE(g.wait_line("echoc: ", 60)) << g.output();
    EXPECT_THAT(g.output(), HasSubstr("echoc: 100000 bytes echoed intact")) << g.output();
    EXPECT_TRUE(srv.wait_for("echoed 100000", 20)) << srv.output();
    g.send("echod 7 &\n");
    ASSERT_TRUE(g.wait_for("echod: tcp port 7", 30)) << g.output();
    r = host({"python3", "-c",
              "import socket\nc=socket.create_connection(('10.1.0.2',7),timeout=30)\n"
              "m=bytes(range(256))*200\nc.sendall(m)\nc.shutdown(socket.SHUT_WR)\nb=b''\n"
              "while True:\n    d=c.recv(65536)\n    if not d: break\n    b+=d\n"
              "print('intact' if b==m else 'differs', len(b))\n"});
    EXPECT_THAT(r.out, HasSubstr("intact 51200")) << describe(r) << g.output();
    g.send("httpd &\n");
    ASSERT_TRUE(g.wait_for("httpd: listening on port 80", 30)) << g.output();
    const fs::path body = dir_ / "body";
    r = host({curl.string(), "-sS", "--max-time", "50", "-o", body.string(),
              "http://10.1.0.2/pattern/100000"});
    EXPECT_EQ(r.status, 0) << describe(r) << g.output();
    EXPECT_TRUE(read_text(body) == http_pattern(100000)) << "the body differs";
    g.send("poweroff\n");
    EXPECT_EQ(g.finish(60), 0) << g.output();
}

// The driver killed mid-transfer, on ukvm's own virtio-net device (user backend).
TEST_F(UkvmNet, KillingTheNetDriverMidTransferOnUkvm) {
    HostEchoServer echo;
    auto g = start("netkill", "ip=10.0.2.15/24 gw=10.0.2.2", "[[net]]\nbackend = \"user\"\n");
    for (int i = 0; i < 600 && !g->wait_for("minix# ", 0); ++i) {
        if (g->output().find("is not built yet") != std::string::npos)
            GTEST_SKIP() << "this ukvm: " << g->output();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(g->wait_for("minix# ", 1)) << g->output();
    const std::string port = std::to_string(echo.port());
    g->send("echoc 10.0.2.2 " + port + " 2000000 &\n");
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (echo.echoed() < 200000 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_GE(echo.echoed(), 200000u) << g->output();
    size_t mark = g->output().size();
    g->send("ps\n");
    ASSERT_TRUE(g->wait_for(" inet", 20, mark)) << g->output();
    std::smatch m;
    std::string ps = g->output().substr(mark);
    ASSERT_TRUE(std::regex_search(ps, m, std::regex("\n *([0-9]+) +[0-9]+ +[0-9]+ .* vnet\r?\n")))
        << ps;
    g->send("kill " + std::string(m[1]) + "\n");
    ASSERT_TRUE(g->wait_for("rs: vnet0 restarted", 30)) << g->output();
    EXPECT_LT(echo.echoed(), 2000000u) << "the transfer ended before the kill";
    ASSERT_TRUE(g->wait_line("echoc: ", 120)) << g->output();
    EXPECT_THAT(g->output(), HasSubstr("echoc: 2000000 bytes echoed intact")) << g->output();
    mark = g->output().size();
    g->send("echoc 10.0.2.2 " + port + " 100000\n");
    ASSERT_TRUE(g->wait_line("echoc: ", 60, mark)) << g->output();
    EXPECT_THAT(g->output().substr(mark), HasSubstr("echoc: 100000 bytes echoed intact"));
    g->send("poweroff\n");
    EXPECT_EQ(g->finish(60), 0) << g->output();
}

// RS restarts a killed network driver in the middle of a TCP transfer: INET loses the
// driver (link down), attaches the new one when it announces itself, TCP retransmits what
// was lost, the transfer completes intact, and new connections work. Twice, each time
// checking that traffic resumes: a restarted driver that posts its receive buffers while
// QEMU holds frames for the guest must still get the interrupt for them (an edge lost
// before the driver took the line stalled the transfer for good), and INET resends what
// TCP sent into the void without waiting out the retransmission backoff.
TEST_F(NetBoot, KillingTheNetDriverMidTransferLosesNoConnection) {
    SKIP_WITHOUT_KVM();
    if (qemu_.empty()) GTEST_SKIP() << "qemu-system-x86_64 is not in PATH";
    constexpr size_t kTotal = 6000000;
    HostEchoServer echo;
    Interactive g(qemu_user_net(free_port()));
    ASSERT_TRUE(g.wait_for("minix# ", 60)) << g.output();
    const std::string port = std::to_string(echo.port());
    g.send("echoc 10.0.2.2 " + port + " " + std::to_string(kTotal) + " &\n");
    auto progress = [&](size_t at_least, int seconds) {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (echo.echoed() < at_least && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return echo.echoed();
    };
    ASSERT_GE(progress(200000, 60), 200000u) << g.output();
    for (int kill = 1; kill <= 2; ++kill) {
        size_t mark = g.output().size();
        g.send("ps\n");
        ASSERT_TRUE(g.wait_for(" inet", 20, mark)) << g.output();  // (the line after vnet's)
        std::smatch m;
        std::string ps = g.output().substr(mark);
        ASSERT_TRUE(
            std::regex_search(ps, m, std::regex("\n *([0-9]+) +[0-9]+ +[0-9]+ .* vnet\r?\n")))
            << ps;
        g.send("kill " + std::string(m[1]) + "\n");
        ASSERT_TRUE(g.wait_for("rs: vnet0 restarted", 30, mark)) << g.output();
        const size_t at = echo.echoed();
        ASSERT_LT(at, kTotal) << "the transfer ended before kill " << kill;
        const size_t want = at + 100000 < kTotal ? at + 100000 : kTotal;
        ASSERT_GE(progress(want, 60), want)
            << "no traffic after restart " << kill << " (" << at << " bytes echoed)\n"
            << g.output();
    }
    ASSERT_TRUE(g.wait_line("echoc: ", 120)) << g.output();
    EXPECT_THAT(g.output(), HasSubstr("echoc: " + std::to_string(kTotal) + " bytes echoed intact"))
        << g.output();
    EXPECT_THAT(g.output(), HasSubstr("inet: lost the network driver"));
    const size_t mark = g.output().size();
    g.send("echoc 10.0.2.2 " + port + " 100000\n");
    ASSERT_TRUE(g.wait_line("echoc: ", 60, mark)) << g.output();
    EXPECT_THAT(g.output().substr(mark), HasSubstr("echoc: 100000 bytes echoed intact"));
    g.send("poweroff\n");
    EXPECT_EQ(g.finish(30), (0 << 1) | 1) << g.output();
}

}  // namespace
