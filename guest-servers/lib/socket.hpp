// BSD-style sockets for guest programs: each call is a message to INET (kInet* in
// proto_inet.hpp). Data goes through one buffer per process that INET holds a grant for,
// so a send or receive costs one SENDREC. Calls return -1 and set errno (a positive Linux
// errno value) on failure. Socket descriptors start at kSocketFdBase, apart from files'.
#pragma once

#include "sys.hpp"

extern "C" {

using socklen_t = uint32_t;
using ssize_t = long;

inline constexpr int AF_INET = 2;
inline constexpr int SOCK_STREAM = 1;
inline constexpr int SOCK_DGRAM = 2;
inline constexpr int SOCK_RAW = 3;
inline constexpr int IPPROTO_ICMP = 1;
inline constexpr int IPPROTO_TCP = 6;
inline constexpr int IPPROTO_UDP = 17;
inline constexpr uint32_t INADDR_ANY = 0;
inline constexpr int SOL_SOCKET = 1;
inline constexpr int SO_RCVTIMEO = 20;  // value: a uint64_t of milliseconds (0: none)
inline constexpr int MSG_PEEK = 0x2;
inline constexpr int MSG_DONTWAIT = 0x40;

struct in_addr {
    uint32_t s_addr;  // network byte order
};
struct sockaddr {
    uint16_t sa_family;
    char sa_data[14];
};
struct sockaddr_in {
    uint16_t sin_family;
    uint16_t sin_port;  // network byte order
    in_addr sin_addr;
    uint8_t sin_zero[8];
};

extern int errno;

int socket(int domain, int type, int protocol);
int bind(int fd, const sockaddr* addr, socklen_t len);
int listen(int fd, int backlog);
int accept(int fd, sockaddr* addr, socklen_t* len);
int connect(int fd, const sockaddr* addr, socklen_t len);
ssize_t send(int fd, const void* buf, size_t n, int flags);
ssize_t recv(int fd, void* buf, size_t n, int flags);
ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t len);
ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* len);
int getsockname(int fd, sockaddr* addr, socklen_t* len);
int getpeername(int fd, sockaddr* addr, socklen_t* len);
int setsockopt(int fd, int level, int name, const void* value, socklen_t len);
int closesocket(int fd);
// Parses dotted-quad text; 0 if it is not an IPv4 address.
int inet_aton(const char* s, in_addr* out);
// Formats an address (network order) into buf (at least 16 bytes).
char* inet_ntoa_r(in_addr a, char* buf);
const char* strerror(int errnum);
}

inline constexpr uint16_t htons(uint16_t v) {
    return static_cast<uint16_t>((v >> 8) | (v << 8));
}
inline constexpr uint16_t ntohs(uint16_t v) {
    return htons(v);
}
inline constexpr uint32_t htonl(uint32_t v) {
    return __builtin_bswap32(v);
}
inline constexpr uint32_t ntohl(uint32_t v) {
    return htonl(v);
}

namespace net {

inline constexpr int kSocketFdBase = 64;
// Sends all n bytes of a stream (send until done); n, or -1 with errno.
ssize_t send_all(int fd, const void* buf, size_t n);
// The interface at index (0 lo0, 1 en0); false past the last.
bool if_info(int index, proto::InetIfInfo* out);
int if_set(int index, uint32_t addr, uint32_t mask, uint32_t gw);  // network order

// The Internet checksum (RFC 1071) of n bytes, high byte first (as ICMP's header holds it).
inline uint16_t checksum(const uint8_t* p, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

}  // namespace net
