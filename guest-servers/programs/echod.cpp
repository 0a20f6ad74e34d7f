// echod [PORT] [udp]: an echo server (default port 7, TCP): each connection in turn gets
// back every byte it sends until it closes; with "udp", each datagram goes back to its
// sender. Runs until killed.
#include "socket.hpp"

using user::print;

int main(const char* args) {
    int64_t port = 7;
    char word[8] = {};
    size_t i = 0;
    for (; args[i] && args[i] != ' ' && i < sizeof word - 1; ++i) word[i] = args[i];
    if (word[0] && (!sys::parse_int(word, &port) || port < 1 || port > 65535)) {
        print("usage: echod [PORT] [udp]\n");
        return 2;
    }
    bool udp = args[i] == ' ' && strcmp(args + i + 1, "udp") == 0;
    int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 ||
        (!udp && listen(fd, 4) < 0)) {
        print("echod: port %ld: %s\n", port, strerror(errno));
        return 1;
    }
    print("echod: %s port %ld\n", udp ? "udp" : "tcp", port);
    static char buf[32768];
    for (;;) {
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        if (udp) {
            ssize_t r = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
            if (r >= 0)
                sendto(fd, buf, static_cast<size_t>(r), 0, reinterpret_cast<sockaddr*>(&peer), len);
            continue;
        }
        int c = accept(fd, reinterpret_cast<sockaddr*>(&peer), &len);
        if (c < 0) continue;
        uint64_t total = 0;
        for (;;) {
            ssize_t r = recv(c, buf, sizeof buf, 0);
            if (r <= 0 || net::send_all(c, buf, static_cast<size_t>(r)) < 0) break;
            total += static_cast<uint64_t>(r);
        }
        char who[16];
        print("echod: %s:%u: %lu bytes\n", inet_ntoa_r(peer.sin_addr, who), ntohs(peer.sin_port),
              total);
        closesocket(c);
    }
}
