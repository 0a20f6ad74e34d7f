// nettest: the socket library and INET over the loopback interface (127.0.0.1). TCP echo
// of a large stream between a forked child and its parent, UDP both ways, refused and
// timed-out calls, sockets private to their owner, ICMP echo through a raw socket.
// Prints each check, then "nettest: N passed, M failed"; exits with M.
#include "socket.hpp"

using user::print;

namespace {

int g_passed = 0, g_failed = 0;

void check(bool ok, const char* what) {
    if (ok)
        ++g_passed;
    else
        ++g_failed;
    print("nettest: %s: %s\n", ok ? "ok" : "FAILED", what);
}

sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    return a;
}
const sockaddr* sa(const sockaddr_in* a) {
    return reinterpret_cast<const sockaddr*>(a);
}

uint8_t pattern(size_t i) {
    return static_cast<uint8_t>(i * 7 + (i >> 9));
}

constexpr size_t kStreamBytes = 512 * 1024;

// The child: connects, sends the pattern and reads the echo back. Exit status: 0 ok,
// 1 connect, 2 send, 3 receive, 4 mismatch, 5 a parent's socket was usable.
[[noreturn]] void tcp_client(int parent_fd) {
    char buf[4096];
    if (send(parent_fd, "x", 1, 0) >= 0 || errno != 9) user::exit(5);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(7000);
    if (fd < 0 || connect(fd, sa(&a), sizeof a) < 0) user::exit(1);
    size_t sent = 0, got = 0;
    while (got < kStreamBytes) {
        if (sent < kStreamBytes && sent - got < 64 * 1024) {
            size_t n = kStreamBytes - sent < sizeof buf ? kStreamBytes - sent : sizeof buf;
            for (size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(pattern(sent + i));
            if (net::send_all(fd, buf, n) < 0) user::exit(2);
            sent += n;
            continue;
        }
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) user::exit(3);
        for (ssize_t i = 0; i < r; ++i)
            if (static_cast<uint8_t>(buf[i]) != pattern(got + static_cast<size_t>(i)))
                user::exit(4);
        got += static_cast<size_t>(r);
    }
    closesocket(fd);
    user::exit(0);
}

void tcp_echo() {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(7000);
    check(l >= net::kSocketFdBase, "TCP socket");
    check(bind(l, sa(&a), sizeof a) == 0, "bind 127.0.0.1:7000");
    check(listen(l, 4) == 0, "listen");
    int32_t pid = sys::fork();
    if (pid == 0) tcp_client(l);
    check(pid > 0, "fork a client");
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int c = accept(l, reinterpret_cast<sockaddr*>(&peer), &len);
    check(c >= 0 && peer.sin_addr.s_addr == htonl(0x7f000001), "accept from 127.0.0.1");
    size_t echoed = 0;
    static char buf[16384];
    uint64_t t0 = user::uptime_ns();
    for (;;) {
        ssize_t r = recv(c, buf, sizeof buf, 0);
        if (r <= 0) break;
        if (net::send_all(c, buf, static_cast<size_t>(r)) < 0) break;
        echoed += static_cast<size_t>(r);
    }
    uint64_t ms = (user::uptime_ns() - t0) / 1000000;
    sys::WaitStatus st{};
    check(sys::wait(pid, &st) == pid && st.reason == ukvm::kernel::kExitNormal && st.detail == 0,
          "the client got its 512 KiB back intact");
    print("nettest: echoed %lu bytes in %lu ms (status %lu)\n", echoed, ms, st.detail);
    check(echoed == kStreamBytes, "the server echoed every byte, then saw the end of the stream");
    check(closesocket(c) == 0 && closesocket(l) == 0, "close");
    check(closesocket(l) < 0 && errno == 9, "a closed socket is gone");
}

void udp() {
    int s1 = socket(AF_INET, SOCK_DGRAM, 0), s2 = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a1 = loopback(7001), a2 = loopback(7002);
    check(s1 >= 0 && s2 >= 0, "UDP sockets");
    check(bind(s1, sa(&a1), sizeof a1) == 0 && bind(s2, sa(&a2), sizeof a2) == 0, "UDP bind");
    int s3 = socket(AF_INET, SOCK_DGRAM, 0);
    check(bind(s3, sa(&a1), sizeof a1) < 0 && errno == 98, "a second bind to 7001: in use");
    closesocket(s3);
    check(sendto(s2, "ping", 4, 0, sa(&a1), sizeof a1) == 4, "sendto");
    char buf[16] = {};
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t r = recvfrom(s1, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    check(r == 4 && memcmp(buf, "ping", 4) == 0 && ntohs(from.sin_port) == 7002,
          "recvfrom: the datagram and its sender");
    check(sendto(s1, "pong!", 5, 0, reinterpret_cast<sockaddr*>(&from), len) == 5, "reply");
    r = recv(s2, buf, sizeof buf, 0);
    check(r == 5 && memcmp(buf, "pong!", 5) == 0, "the reply arrives");
    uint64_t ms = 100;
    check(setsockopt(s1, SOL_SOCKET, SO_RCVTIMEO, &ms, sizeof ms) == 0, "SO_RCVTIMEO");
    uint64_t t0 = user::uptime_ns();
    r = recv(s1, buf, sizeof buf, 0);
    uint64_t waited = (user::uptime_ns() - t0) / 1000000;
    check(r < 0 && errno == 110 && waited >= 90, "recv with nothing to read times out");
    check(recv(s1, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno == 11, "MSG_DONTWAIT: would block");
    closesocket(s1);
    closesocket(s2);
}

void refused() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(7999);
    check(connect(fd, sa(&a), sizeof a) < 0 && errno == 111, "connect to a closed port: refused");
    closesocket(fd);
    check(send(200, "x", 1, 0) < 0 && errno == 9, "a bad descriptor");
    check(socket(AF_INET, 9, 0) < 0, "an unknown socket type");
}

void ping() {
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    check(fd >= 0, "raw ICMP socket");
    uint8_t req[40] = {8, 0, 0, 0, 0x12, 0x34, 0, 1};
    for (int i = 8; i < 40; ++i) req[i] = static_cast<uint8_t>(i);
    uint16_t c = net::checksum(req, sizeof req);
    req[2] = static_cast<uint8_t>(c >> 8), req[3] = static_cast<uint8_t>(c);
    sockaddr_in a = loopback(0);
    check(sendto(fd, req, sizeof req, 0, sa(&a), sizeof a) == sizeof req, "send an echo request");
    uint64_t ms = 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &ms, sizeof ms);
    bool got = false;
    for (int i = 0; i < 4 && !got; ++i) {
        uint8_t buf[128];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r < 20) break;
        size_t ihl = (buf[0] & 15u) * 4;
        got = static_cast<size_t>(r) == ihl + sizeof req && buf[ihl] == 0 && buf[ihl + 4] == 0x12 &&
              buf[ihl + 5] == 0x34 && memcmp(buf + ihl + 8, req + 8, sizeof req - 8) == 0;
    }
    check(got, "an echo reply from 127.0.0.1");
    closesocket(fd);
}

}  // namespace

int main(const char*) {
    tcp_echo();
    udp();
    refused();
    ping();
    print("nettest: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed;
}
