// echoc HOST PORT [BYTES]: connects to an echo server, sends BYTES (default 65536) of a
// pattern, reads the echo back and checks it; prints the time and rate. Exit 0 when the
// echo was intact.
#include "socket.hpp"

using user::print;

namespace {
uint8_t pattern(uint64_t i) {
    return static_cast<uint8_t>(i * 13 + (i >> 10));
}
}  // namespace

int main(const char* args) {
    char words[3][20] = {};
    int nw = 0;
    for (const char* p = args; *p && nw < 3;) {
        while (*p == ' ') ++p;
        size_t n = 0;
        while (*p && *p != ' ') {
            if (n < sizeof words[0] - 1) words[nw][n++] = *p;
            ++p;
        }
        if (n) ++nw;
    }
    in_addr host{};
    int64_t port = 0, bytes = 65536;
    if (nw < 2 || !inet_aton(words[0], &host) || !sys::parse_int(words[1], &port) || port < 1 ||
        port > 65535 || (nw == 3 && (!sys::parse_int(words[2], &bytes) || bytes < 0))) {
        print("usage: echoc A.B.C.D PORT [BYTES]\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr = host;
    uint64_t t0 = user::uptime_ns();
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        print("echoc: connect %s:%ld: %s\n", words[0], port, strerror(errno));
        return 1;
    }
    static uint8_t buf[16384];
    uint64_t total = static_cast<uint64_t>(bytes), sent = 0, got = 0;
    while (got < total) {
        if (sent < total && sent - got < 32768) {
            uint64_t n = total - sent < sizeof buf ? total - sent : sizeof buf;
            for (uint64_t i = 0; i < n; ++i) buf[i] = pattern(sent + i);
            if (net::send_all(fd, buf, n) < 0) break;
            sent += n;
            continue;
        }
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; ++i)
            if (buf[i] != pattern(got + static_cast<uint64_t>(i))) {
                print("echoc: byte %lu differs\n", got + static_cast<uint64_t>(i));
                return 1;
            }
        got += static_cast<uint64_t>(r);
    }
    closesocket(fd);
    uint64_t us = (user::uptime_ns() - t0) / 1000;
    if (got != total) {
        print("echoc: %lu of %lu bytes came back (%s)\n", got, total, strerror(errno));
        return 1;
    }
    print("echoc: %lu bytes echoed intact in %lu ms (%lu KiB/s)\n", total, us / 1000,
          us ? total * 1000000 / us / 1024 : 0);
    return 0;
}
