// ping HOST [COUNT]: ICMP echo requests through a raw socket, one a second; prints each
// reply's round-trip time and a summary. Exit status 0 when a reply came back.
#include "socket.hpp"

using user::print;

int main(const char* args) {
    char host[20] = {};
    int64_t count = 3;
    size_t i = 0;
    for (; args[i] && args[i] != ' ' && i < sizeof host - 1; ++i) host[i] = args[i];
    if (args[i] == ' ' && (!sys::parse_int(args + i + 1, &count) || count < 1)) count = 3;
    in_addr dst{};
    if (!inet_aton(host, &dst)) {
        print("usage: ping A.B.C.D [COUNT]\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0) {
        print("ping: socket: %s\n", strerror(errno));
        return 1;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr = dst;
    uint64_t timeout_ms = 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    uint16_t id = static_cast<uint16_t>(user::rdtsc());
    int received = 0;
    for (int seq = 1; seq <= count; ++seq) {
        uint8_t req[64] = {8,
                           0,
                           0,
                           0,
                           static_cast<uint8_t>(id >> 8),
                           static_cast<uint8_t>(id),
                           static_cast<uint8_t>(seq >> 8),
                           static_cast<uint8_t>(seq)};
        for (size_t k = 8; k < sizeof req; ++k) req[k] = static_cast<uint8_t>(k);
        uint16_t c = net::checksum(req, sizeof req);
        req[2] = static_cast<uint8_t>(c >> 8), req[3] = static_cast<uint8_t>(c);
        uint64_t t0 = user::uptime_ns();
        if (sendto(fd, req, sizeof req, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
            print("ping: send: %s\n", strerror(errno));
            continue;
        }
        bool got = false;
        while (!got) {
            uint8_t buf[256];
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r < 0) break;  // timed out
            size_t ihl = (buf[0] & 15u) * 4;
            if (static_cast<size_t>(r) < ihl + 8) continue;
            const uint8_t* icmp = buf + ihl;
            uint32_t src;
            memcpy(&src, buf + 12, 4);
            got = icmp[0] == 0 && icmp[4] == req[4] && icmp[5] == req[5] && icmp[6] == req[6] &&
                  icmp[7] == req[7] && src == dst.s_addr;
            if (got) {
                uint64_t us = (user::uptime_ns() - t0) / 1000;
                print("%ld bytes from %s: icmp_seq=%d ttl=%u time=%lu.%03lu ms\n",
                      r - static_cast<ssize_t>(ihl), host, seq, buf[8], us / 1000, us % 1000);
                ++received;
            }
        }
        if (!got) print("no reply for icmp_seq=%d\n", seq);
        if (seq < count) {
            uint64_t spent = user::uptime_ns() - t0;
            if (spent < 1000000000ull) sys::sleep_ns(1000000000ull - spent);
        }
    }
    print("--- %s: %ld sent, %d received\n", host, count, received);
    closesocket(fd);
    return received ? 0 : 1;
}
