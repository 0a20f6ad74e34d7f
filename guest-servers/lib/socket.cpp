#include "socket.hpp"

using namespace ukvm::kernel;
using namespace proto;

int errno;

namespace {

constexpr int kMaxFds = 64;
constexpr size_t kBufSize = 60 * 1024;  // INET's largest transfer per call

// INET's endpoint and the grant it holds on this process's transfer buffer (made again
// when INET is restarted: its sockets are gone then, but new ones work).
Endpoint g_inet = kNone;
uint8_t* g_buf = nullptr;
uint64_t g_grant = 0;
uint64_t g_timeout_ms[kMaxFds];

int fail(int32_t e) {
    errno = -e;
    return -1;
}

bool attach() {
    if (g_inet != kNone) return true;
    if (!g_buf && !(g_buf = static_cast<uint8_t*>(malloc(kBufSize)))) return false;
    Endpoint e = sys::ds_lookup("inet");
    if (e == kNone) e = user::find("inet");
    if (e == kNone) return false;
    Message k{};
    k.u64[0] = static_cast<uint64_t>(e), k.u64[1] = reinterpret_cast<uintptr_t>(g_buf);
    k.u64[2] = kBufSize, k.u64[3] = kGrantRead | kGrantWrite;
    if (user::kernel_call(kSysGrantCreate, &k) != kOk) return false;
    g_grant = k.u64[0];
    g_inet = e;
    return true;
}

void detach() {
    Message k{};
    k.u64[0] = g_grant;
    user::kernel_call(kSysGrantRevoke, &k);
    g_inet = kNone;
}

// One request to INET: the IPC error or INET's answer (the reply in *m).
int32_t inet_call(Message* m) {
    Message request = *m;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!attach()) return kESrch;
        *m = request;
        if (m->u64[1] == ~0ull) m->u64[1] = g_grant;  // the transfer buffer's grant
        int32_t r = user::sendrec(g_inet, m);
        if (r == kEDeadSrcDst || r == kEBadSrcDst) {
            detach();
            continue;
        }
        return r != kOk ? r : m->m_type;
    }
    return kESrch;
}

int64_t sock_of(int fd) {
    return fd - net::kSocketFdBase;
}
bool valid_fd(int fd) {
    return fd >= net::kSocketFdBase && fd < net::kSocketFdBase + kMaxFds;
}

bool parse_sockaddr(const sockaddr* a, socklen_t len, uint64_t* addr, uint64_t* port) {
    if (!a || len < sizeof(sockaddr_in)) return false;
    const auto* in = reinterpret_cast<const sockaddr_in*>(a);
    if (in->sin_family != AF_INET) return false;
    *addr = in->sin_addr.s_addr;
    *port = ntohs(in->sin_port);
    return true;
}

void fill_sockaddr(sockaddr* a, socklen_t* len, uint64_t addr, uint64_t port) {
    if (!a || !len || *len < sizeof(sockaddr_in)) return;
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(port));
    in.sin_addr.s_addr = static_cast<uint32_t>(addr);
    memcpy(a, &in, sizeof in);
    *len = sizeof in;
}

}  // namespace

extern "C" {

void ukvm_after_fork() {
    g_inet = kNone;  // the grant was the parent's; the buffer (copied) is the child's own
}

int socket(int domain, int type, int protocol) {
    if (domain != AF_INET) return fail(kEInetAfNoSupport);
    Message m{};
    m.m_type = kInetSocket;
    m.i64[0] = type, m.i64[1] = protocol;
    int32_t r = inet_call(&m);
    if (r < 0) return fail(r);
    if (r >= kMaxFds) return fail(kEInetNoBufs);
    g_timeout_ms[r] = 0;
    return net::kSocketFdBase + r;
}

int bind(int fd, const sockaddr* addr, socklen_t len) {
    Message m{};
    m.m_type = kInetBind;
    m.i64[0] = sock_of(fd);
    if (!parse_sockaddr(addr, len, &m.u64[1], &m.u64[2])) return fail(kEInval);
    int32_t r = inet_call(&m);
    return r < 0 ? fail(r) : 0;
}

int listen(int fd, int backlog) {
    Message m{};
    m.m_type = kInetListen;
    m.i64[0] = sock_of(fd), m.i64[1] = backlog;
    int32_t r = inet_call(&m);
    return r < 0 ? fail(r) : 0;
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
    Message m{};
    m.m_type = kInetAccept;
    m.i64[0] = sock_of(fd);
    int32_t r = inet_call(&m);
    if (r < 0) return fail(r);
    fill_sockaddr(addr, len, m.u64[1], m.u64[2]);
    if (r < kMaxFds) g_timeout_ms[r] = 0;
    return net::kSocketFdBase + r;
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
    Message m{};
    m.m_type = kInetConnect;
    m.i64[0] = sock_of(fd);
    if (!parse_sockaddr(addr, len, &m.u64[1], &m.u64[2])) return fail(kEInval);
    int32_t r = inet_call(&m);
    return r < 0 ? fail(r) : 0;
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t len) {
    if (!attach()) return fail(kESrch);
    if (n > kBufSize) n = kBufSize;  // a stream takes the rest in the next call
    memcpy(g_buf, buf, n);
    Message m{};
    m.m_type = kInetSend;
    m.i64[0] = sock_of(fd);
    m.u64[1] = ~0ull, m.u64[2] = n, m.u64[5] = static_cast<uint64_t>(flags);
    if (to && !parse_sockaddr(to, len, &m.u64[3], &m.u64[4])) return fail(kEInval);
    int32_t r = inet_call(&m);
    return r < 0 ? fail(r) : r;
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
    return sendto(fd, buf, n, flags, nullptr, 0);
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* len) {
    if (n > kBufSize) n = kBufSize;
    Message m{};
    m.m_type = kInetRecv;
    m.i64[0] = sock_of(fd);
    m.u64[1] = ~0ull, m.u64[2] = n, m.u64[5] = static_cast<uint64_t>(flags);
    m.u64[6] = valid_fd(fd) ? g_timeout_ms[sock_of(fd)] : 0;
    int32_t r = inet_call(&m);
    if (r < 0) return fail(r);
    memcpy(buf, g_buf, static_cast<size_t>(r));
    fill_sockaddr(from, len, m.u64[3], m.u64[4]);
    return r;
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
    return recvfrom(fd, buf, n, flags, nullptr, nullptr);
}

static int get_name(int fd, sockaddr* addr, socklen_t* len, int64_t peer) {
    Message m{};
    m.m_type = kInetGetName;
    m.i64[0] = sock_of(fd), m.i64[1] = peer;
    int32_t r = inet_call(&m);
    if (r < 0) return fail(r);
    fill_sockaddr(addr, len, m.u64[1], m.u64[2]);
    return 0;
}

int getsockname(int fd, sockaddr* addr, socklen_t* len) {
    return get_name(fd, addr, len, 0);
}

int getpeername(int fd, sockaddr* addr, socklen_t* len) {
    return get_name(fd, addr, len, 1);
}

int setsockopt(int fd, int level, int name, const void* value, socklen_t len) {
    if (!valid_fd(fd)) return fail(kEInetBadF);
    if (level != SOL_SOCKET || name != SO_RCVTIMEO || len != sizeof(uint64_t))
        return fail(kEInetOpNotSupp);
    memcpy(&g_timeout_ms[sock_of(fd)], value, sizeof(uint64_t));
    return 0;
}

int closesocket(int fd) {
    Message m{};
    m.m_type = kInetClose;
    m.i64[0] = sock_of(fd);
    int32_t r = inet_call(&m);
    return r < 0 ? fail(r) : 0;
}

int inet_aton(const char* s, in_addr* out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        uint32_t part = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4)
            part = part * 10 + uint32_t(*s++ - '0'), ++digits;
        if (!digits || part > 255) return 0;
        v = v << 8 | part;
        if (i < 3 && *s++ != '.') return 0;
    }
    if (*s) return 0;
    out->s_addr = htonl(v);
    return 1;
}

char* inet_ntoa_r(in_addr a, char* buf) {
    uint32_t v = ntohl(a.s_addr);
    user::format(buf, 16, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
    return buf;
}

const char* strerror(int e) {
    switch (e) {
        case 3:
            return "no such server (is INET running?)";
        case 9:
            return "bad socket";
        case 11:
            return "would block";
        case 12:
            return "out of memory";
        case 14:
            return "bad address";
        case 16:
            return "busy";
        case 22:
            return "invalid argument";
        case 32:
            return "broken pipe";
        case 95:
            return "operation not supported";
        case 97:
            return "address family not supported";
        case 98:
            return "address in use";
        case 103:
            return "connection aborted";
        case 104:
            return "connection reset";
        case 105:
            return "no buffer space";
        case 106:
            return "already connected";
        case 107:
            return "not connected";
        case 110:
            return "timed out";
        case 111:
            return "connection refused";
        case 113:
            return "host unreachable";
        default:
            return "error";
    }
}

}  // extern "C"

namespace net {

ssize_t send_all(int fd, const void* buf, size_t n) {
    const auto* p = static_cast<const uint8_t*>(buf);
    size_t done = 0;
    while (done < n) {
        ssize_t r = send(fd, p + done, n - done, 0);
        if (r < 0) return -1;
        done += static_cast<size_t>(r);
    }
    return static_cast<ssize_t>(n);
}

bool if_info(int index, InetIfInfo* out) {
    Message m{};
    m.m_type = kInetIfInfo;
    m.i64[0] = index;
    if (inet_call(&m) != 0) return false;
    memcpy(out, m.bytes, sizeof *out);
    return true;
}

int if_set(int index, uint32_t addr, uint32_t mask, uint32_t gw) {
    Message m{};
    m.m_type = kInetIfSet;
    m.i64[0] = index, m.u64[1] = addr, m.u64[2] = mask, m.u64[3] = gw;
    int32_t r = inet_call(&m);
    return r < 0 ? fail(r) : 0;
}

}  // namespace net
