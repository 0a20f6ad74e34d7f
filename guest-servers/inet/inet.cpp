// INET, the TCP/IP server: lwIP (NO_SYS, raw callback API) driven by this message loop.
// Programs use BSD-style sockets (kInet* in lib/proto_inet.hpp); calls that must wait are
// answered later, so INET never blocks on a client. Interfaces: lwIP's loopback (lo0,
// 127.0.0.1) and one Ethernet interface (en0) behind the NIC driver "vnet" (kNet*), which
// INET calls with SENDREC and which notifies INET when frames arrive. Arguments:
// "ip=A.B.C.D/N gw=A.B.C.D" (static) or "ip=dhcp" for en0.
extern "C" {
#include <lwip/dhcp.h>
#include <lwip/etharp.h>
#include <lwip/inet_chksum.h>
#include <lwip/init.h>
#include <lwip/ip4_addr.h>
#include <lwip/netif.h>
#include <lwip/pbuf.h>
#include <lwip/priv/tcp_priv.h>
#include <lwip/raw.h>
#include <lwip/tcp.h>
#include <lwip/timeouts.h>
#include <lwip/udp.h>
#include <netif/ethernet.h>
}

#include "sys.hpp"

using namespace ukvm::kernel;
using namespace proto;
using user::print;

// ---- what lwIP needs from its platform ----

extern "C" {

u32_t sys_now(void) {
    return static_cast<u32_t>(user::uptime_ns() / 1000000);
}

void ukvm_lwip_diag(const char* fmt, ...) {
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    size_t n = user::vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    user::write(buf, n < sizeof buf ? n : sizeof buf - 1);
}

void ukvm_lwip_assert(const char* what, const char* file, int line) {
    print("inet: lwIP assertion \"%s\" failed at %s:%d\n", what, file, line);
    user::exit(70);
}

int atoi(const char* s) {
    int v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
    return v;
}

uint32_t ukvm_lwip_rand(void) {
    static uint64_t state = 0;
    if (!state) state = user::rdtsc() | 1;
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
    return static_cast<uint32_t>(state >> 11);
}

}  // extern "C"

namespace {

constexpr int kMaxSockets = 64;
constexpr int kBacklogMax = 8;
constexpr int kDgramQueue = 32;
constexpr size_t kStagingSize = 60 * 1024;    // at most this per call (lwIP counts in u16)
alignas(16) uint8_t g_staging[kStagingSize];  // client data on its way into or out of lwIP

int32_t from_err(err_t e) {
    switch (e) {
        case ERR_OK:
            return 0;
        case ERR_MEM:
            return kEInetNoMem;
        case ERR_BUF:
            return kEInetNoBufs;
        case ERR_TIMEOUT:
            return kEInetTimedOut;
        case ERR_RTE:
            return kEInetHostUnreach;
        case ERR_INPROGRESS:
            return kEInetInProgress;
        case ERR_VAL:
            return kEInval;
        case ERR_WOULDBLOCK:
            return kEInetAgain;
        case ERR_USE:
            return kEInetAddrInUse;
        case ERR_ALREADY:
            return kEInetInProgress;
        case ERR_ISCONN:
            return kEInetIsConn;
        case ERR_CONN:
            return kEInetNotConn;
        case ERR_IF:
            return kEInetHostUnreach;
        case ERR_ABRT:
            return kEInetConnAborted;
        case ERR_RST:
            return kEInetConnReset;
        case ERR_CLSD:
            return kEInetNotConn;
        case ERR_ARG:
            return kEInval;
        default:
            return kEInval;
    }
}

struct Dgram {
    pbuf* p;
    ip_addr_t addr;
    u16_t port;
};

struct Socket {
    bool used = false;
    Endpoint owner = kNone;  // kNone: accepted by lwIP, not yet by a program
    int64_t type = 0;
    tcp_pcb* tcp = nullptr;
    udp_pcb* udp = nullptr;
    raw_pcb* raw = nullptr;
    bool listening = false;
    bool connecting = false;
    bool eof = false;       // the peer closed its side
    int32_t error = 0;      // the connection failed (lwIP freed the pcb)
    pbuf* rx = nullptr;     // stream data not yet read
    Dgram dq[kDgramQueue];  // datagrams not yet read (a ring)
    int dq_head = 0, dq_len = 0;
    int pending[kBacklogMax];  // accepted sockets not yet handed out
    int npending = 0;
    int backlog = 0;
    // The one call waiting on this socket (kNone: none).
    Endpoint waiter = kNone;
    Message req{};
    uint64_t deadline_ns = 0;
};
Socket g_sockets[kMaxSockets];

int alloc_socket() {
    for (int i = 0; i < kMaxSockets; ++i)
        if (!g_sockets[i].used) {
            g_sockets[i] = Socket{};
            g_sockets[i].used = true;
            return i;
        }
    return -1;
}

void reply(Endpoint to, Message* m, int32_t result) {
    m->m_type = result;
    user::sendnb(to, m);
}

void free_socket(Socket* s);

// Answers the waiting call with result (and the payload in s->req).
void finish(Socket* s, int32_t result) {
    Endpoint w = s->waiter;
    s->waiter = kNone;
    s->deadline_ns = 0;
    s->req.m_type = result;
    user::sendnb(w, &s->req);  // (a dead owner's sockets go in the next sweep)
}

// ---- socket teardown ----

void detach_tcp(tcp_pcb* pcb) {
    tcp_arg(pcb, nullptr);
    if (pcb->state != LISTEN) {
        tcp_recv(pcb, nullptr);
        tcp_sent(pcb, nullptr);
        tcp_err(pcb, nullptr);
    } else {
        tcp_accept(pcb, nullptr);
    }
    if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
}

void free_socket(Socket* s) {
    if (!s->used) return;
    s->used = false;  // first: callbacks from the teardown below must not find it
    if (s->tcp) detach_tcp(s->tcp);
    if (s->udp) udp_remove(s->udp);
    if (s->raw) raw_remove(s->raw);
    if (s->rx) pbuf_free(s->rx);
    for (int i = 0; i < s->dq_len; ++i) pbuf_free(s->dq[(s->dq_head + i) % kDgramQueue].p);
    for (int i = 0; i < s->npending; ++i) free_socket(&g_sockets[s->pending[i]]);
    if (s->waiter != kNone) {
        Endpoint w = s->waiter;
        s->req.m_type = kEInetBadF;
        user::sendnb(w, &s->req);
    }
    *s = Socket{};
}

// ---- data paths ----

bool copy_from_client(Endpoint who, uint64_t grant, size_t n) {
    Message k{};
    k.u64[0] = static_cast<uint64_t>(who), k.u64[1] = grant, k.u64[2] = 0;
    k.u64[3] = reinterpret_cast<uintptr_t>(g_staging), k.u64[4] = n;
    return user::kernel_call(kSysSafeCopyFrom, &k) == kOk;
}

bool copy_to_client(Endpoint who, uint64_t grant, size_t n) {
    Message k{};
    k.u64[0] = static_cast<uint64_t>(who), k.u64[1] = grant, k.u64[2] = 0;
    k.u64[3] = reinterpret_cast<uintptr_t>(g_staging), k.u64[4] = n;
    return user::kernel_call(kSysSafeCopyTo, &k) == kOk;
}

uint32_t addr_of(const ip_addr_t* a) {
    return ip4_addr_get_u32(ip_2_ip4(a));
}

// Tries to complete a kInetRecv on s: true when it was answered (now or with an error).
bool try_recv(Socket* s, Endpoint who, Message* m) {
    size_t want = m->u64[2] < kStagingSize ? m->u64[2] : kStagingSize;
    bool peek = m->u64[5] & kMsgPeek;
    if (s->type == kSockStream) {
        if (s->rx) {
            size_t n = s->rx->tot_len < want ? s->rx->tot_len : want;
            pbuf_copy_partial(s->rx, g_staging, static_cast<u16_t>(n), 0);
            if (!copy_to_client(who, m->u64[1], n)) return reply(who, m, kEFault), true;
            if (!peek) {
                s->rx = pbuf_free_header(s->rx, static_cast<u16_t>(n));
                if (s->tcp) tcp_recved(s->tcp, static_cast<u16_t>(n));
            }
            m->u64[3] = s->tcp ? addr_of(&s->tcp->remote_ip) : 0;
            m->u64[4] = s->tcp ? s->tcp->remote_port : 0;
            reply(who, m, static_cast<int32_t>(n));
            return true;
        }
        if (s->eof) return reply(who, m, 0), true;
        if (s->error) return reply(who, m, s->error), true;
        if (!s->tcp || s->listening) return reply(who, m, kEInetNotConn), true;
        return false;
    }
    if (!s->dq_len) return false;
    Dgram& d = s->dq[s->dq_head];
    size_t n = d.p->tot_len < want ? d.p->tot_len : want;
    pbuf_copy_partial(d.p, g_staging, static_cast<u16_t>(n), 0);
    if (!copy_to_client(who, m->u64[1], n)) return reply(who, m, kEFault), true;
    m->u64[3] = addr_of(&d.addr);
    m->u64[4] = d.port;
    if (!peek) {
        pbuf_free(d.p);
        s->dq_head = (s->dq_head + 1) % kDgramQueue;
        --s->dq_len;
    }
    reply(who, m, static_cast<int32_t>(n));
    return true;
}

// Tries to complete a kInetSend on a stream socket: true when it was answered.
bool try_send_stream(Socket* s, Endpoint who, Message* m) {
    if (s->error) return reply(who, m, s->error), true;
    if (!s->tcp || s->listening || s->connecting) return reply(who, m, kEInetNotConn), true;
    size_t want = m->u64[2] < kStagingSize ? m->u64[2] : kStagingSize;
    if (want == 0) return reply(who, m, 0), true;
    size_t room = tcp_sndbuf(s->tcp);
    if (tcp_sndqueuelen(s->tcp) >= TCP_SND_QUEUELEN - 4) room = 0;
    if (room == 0) return false;
    size_t n = want < room ? want : room;
    if (!copy_from_client(who, m->u64[1], n)) return reply(who, m, kEFault), true;
    err_t e;
    while ((e = tcp_write(s->tcp, g_staging, static_cast<u16_t>(n), TCP_WRITE_FLAG_COPY)) ==
               ERR_MEM &&
           n > 1)
        n /= 2;
    if (e == ERR_MEM) return false;
    if (e != ERR_OK) return reply(who, m, from_err(e)), true;
    tcp_output(s->tcp);
    reply(who, m, static_cast<int32_t>(n));
    return true;
}

// Re-examines the call waiting on s after an event.
void retry_waiter(Socket* s) {
    if (!s->used || s->waiter == kNone) return;
    Endpoint w = s->waiter;
    bool done = false;
    switch (s->req.m_type) {
        case kInetRecv:
            done = try_recv(s, w, &s->req);
            break;
        case kInetSend:
            done = try_send_stream(s, w, &s->req);
            break;
        default:
            return;  // accept and connect are finished by their callbacks
    }
    if (done) s->waiter = kNone, s->deadline_ns = 0;
}

void defer(Socket* s, Endpoint who, const Message& m) {
    s->waiter = who;
    s->req = m;
    s->deadline_ns = 0;
    if (m.m_type == kInetRecv && m.u64[6]) s->deadline_ns = user::uptime_ns() + m.u64[6] * 1000000;
}

// ---- lwIP callbacks ----

err_t on_tcp_recv(void* arg, tcp_pcb* pcb, pbuf* p, err_t err) {
    Socket* s = static_cast<Socket*>(arg);
    if (!s || !s->used) {
        if (p) tcp_recved(pcb, p->tot_len), pbuf_free(p);
        return ERR_OK;
    }
    if (!p) {
        s->eof = true;
    } else if (err == ERR_OK) {
        if (s->rx)
            pbuf_cat(s->rx, p);
        else
            s->rx = p;
    } else {
        pbuf_free(p);
    }
    retry_waiter(s);
    return ERR_OK;
}

err_t on_tcp_sent(void* arg, tcp_pcb*, u16_t) {
    Socket* s = static_cast<Socket*>(arg);
    if (s && s->used) retry_waiter(s);
    return ERR_OK;
}

void on_tcp_err(void* arg, err_t err) {
    Socket* s = static_cast<Socket*>(arg);
    if (!s || !s->used) return;
    s->tcp = nullptr;  // lwIP freed it
    s->error = err == ERR_RST && s->connecting ? kEInetConnRefused : from_err(err);
    if (s->error == 0) s->error = kEInetConnAborted;
    if (s->waiter != kNone) {
        if (s->req.m_type == kInetConnect || s->req.m_type == kInetSend)
            finish(s, s->error);
        else
            retry_waiter(s);
    }
    s->connecting = false;
}

void setup_tcp(Socket* s, tcp_pcb* pcb) {
    s->tcp = pcb;
    tcp_arg(pcb, s);
    tcp_recv(pcb, on_tcp_recv);
    tcp_sent(pcb, on_tcp_sent);
    tcp_err(pcb, on_tcp_err);
    tcp_nagle_disable(pcb);
}

void hand_out(Socket* listener) {
    if (listener->waiter == kNone || listener->req.m_type != kInetAccept || !listener->npending)
        return;
    int id = listener->pending[0];
    memcpy(listener->pending, listener->pending + 1, sizeof(int) * --listener->npending);
    Socket* c = &g_sockets[id];
    c->owner = listener->waiter;
    listener->req.u64[1] = c->tcp ? addr_of(&c->tcp->remote_ip) : 0;
    listener->req.u64[2] = c->tcp ? c->tcp->remote_port : 0;
    finish(listener, id);
}

err_t on_tcp_accept(void* arg, tcp_pcb* pcb, err_t err) {
    Socket* l = static_cast<Socket*>(arg);
    if (err != ERR_OK || !pcb) return ERR_VAL;
    if (!l || !l->used || l->npending >= l->backlog) return ERR_MEM;  // lwIP aborts it
    int id = alloc_socket();
    if (id < 0) return ERR_MEM;
    Socket* c = &g_sockets[id];
    c->type = kSockStream;
    setup_tcp(c, pcb);
    l->pending[l->npending++] = id;
    hand_out(l);
    return ERR_OK;
}

err_t on_tcp_connected(void* arg, tcp_pcb*, err_t err) {
    Socket* s = static_cast<Socket*>(arg);
    if (!s || !s->used) return ERR_OK;
    s->connecting = false;
    if (s->waiter != kNone && s->req.m_type == kInetConnect) finish(s, from_err(err));
    return ERR_OK;
}

void enqueue_dgram(Socket* s, pbuf* p, const ip_addr_t* addr, u16_t port) {
    if (s->dq_len == kDgramQueue) {
        pbuf_free(p);
        return;
    }
    s->dq[(s->dq_head + s->dq_len++) % kDgramQueue] = {p, *addr, port};
    retry_waiter(s);
}

void on_udp_recv(void* arg, udp_pcb*, pbuf* p, const ip_addr_t* addr, u16_t port) {
    Socket* s = static_cast<Socket*>(arg);
    if (!s || !s->used) {
        pbuf_free(p);
        return;
    }
    enqueue_dgram(s, p, addr, port);
}

// Raw sockets see a copy of each packet of their protocol, IP header included; lwIP
// goes on processing the original (so ICMP echo requests are still answered).
u8_t on_raw_recv(void* arg, raw_pcb*, pbuf* p, const ip_addr_t* addr) {
    Socket* s = static_cast<Socket*>(arg);
    if (!s || !s->used) return 0;
    pbuf* q = pbuf_clone(PBUF_RAW, PBUF_RAM, p);
    if (q) enqueue_dgram(s, q, addr, 0);
    return 0;
}

// ---- interfaces ----

struct Nic {
    netif nif{};
    bool added = false;
    Endpoint driver = kNone;
    uint64_t tx_grant = 0, rx_grant = 0;
    uint64_t rx_frames = 0, tx_frames = 0;
    bool dhcp = false;
    ip4_addr_t addr{}, mask{}, gw{};
};
Nic g_nic;
alignas(16) uint8_t g_tx[32 * 1024];  // frames queued for the driver, sent in one call
size_t g_tx_used = 0;
int g_tx_count = 0;
alignas(16) uint8_t g_rx[64 * 1024];

int64_t make_grant(Endpoint to, void* p, size_t n, uint64_t rights) {
    Message k{};
    k.u64[0] = static_cast<uint64_t>(to), k.u64[1] = reinterpret_cast<uintptr_t>(p);
    k.u64[2] = n, k.u64[3] = rights;
    int32_t r = user::kernel_call(kSysGrantCreate, &k);
    return r < 0 ? r : static_cast<int64_t>(k.u64[0]);
}

void revoke(uint64_t id) {
    Message k{};
    k.u64[0] = id;
    user::kernel_call(kSysGrantRevoke, &k);
}

void driver_gone() {
    if (g_nic.driver == kNone) return;
    print("inet: lost the network driver (endpoint %d)\n", g_nic.driver);
    g_nic.driver = kNone;
    revoke(g_nic.tx_grant);
    revoke(g_nic.rx_grant);
    if (g_nic.added) netif_set_link_down(&g_nic.nif);
}

// Hands the queued frames to the driver in one call (each frame a {u16 length, frame,
// pad to 2} record): at the end of every event, and when the batch is full.
void nic_flush() {
    if (!g_tx_count) return;
    Message m{};
    m.m_type = kNetSend;
    m.u64[0] = g_nic.tx_grant, m.u64[1] = g_tx_used, m.u64[2] = static_cast<uint64_t>(g_tx_count);
    int32_t r = g_nic.driver == kNone ? kEDeadSrcDst : user::sendrec(g_nic.driver, &m);
    g_tx_used = 0, g_tx_count = 0;
    if (r != kOk) return driver_gone();
    if (m.m_type > 0) g_nic.tx_frames += static_cast<uint64_t>(m.m_type);
}

err_t nic_output(netif*, pbuf* p) {
    if (g_nic.driver == kNone || p->tot_len > kNetFrameMax) return ERR_IF;
    if (g_tx_used + 2 + p->tot_len + 1 > sizeof g_tx) nic_flush();
    uint16_t len = p->tot_len;
    memcpy(g_tx + g_tx_used, &len, 2);
    pbuf_copy_partial(p, g_tx + g_tx_used + 2, len, 0);
    g_tx_used += 2 + ((len + 1u) & ~1u);
    ++g_tx_count;
    return ERR_OK;  // a full ring drops frames, as a busy wire would
}

err_t nic_init(netif* n) {
    n->name[0] = 'e', n->name[1] = 'n';
    n->output = etharp_output;
    n->linkoutput = nic_output;
    n->mtu = 1500;
    n->hwaddr_len = 6;
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    return ERR_OK;
}

// Reads the frames the driver holds.
void nic_poll() {
    for (int round = 0; round < 64 && g_nic.driver != kNone; ++round) {
        Message m{};
        m.m_type = kNetRecv;
        m.u64[0] = g_nic.rx_grant, m.u64[1] = sizeof g_rx;
        if (user::sendrec(g_nic.driver, &m) != kOk) return driver_gone();
        if (m.m_type <= 0) return;
        size_t off = 0;
        for (int i = 0; i < m.m_type && off + 2 <= sizeof g_rx; ++i) {
            uint16_t len;
            memcpy(&len, g_rx + off, 2);
            off += 2;
            if (len > kNetFrameMax || off + len > sizeof g_rx) break;
            pbuf* p = pbuf_alloc(PBUF_RAW, len, PBUF_POOL);
            if (p) {
                pbuf_take(p, g_rx + off, len);
                ++g_nic.rx_frames;
                if (g_nic.nif.input(p, &g_nic.nif) != ERR_OK) pbuf_free(p);
            }
            off += (len + 1u) & ~1u;
        }
    }
}

// A new driver after a lost one: what TCP sent meanwhile went nowhere and its
// retransmission timers backed off (up to 128 times the RTO); send again now, from a
// fresh RTO, rather than wait out the backoff.
void kick_retransmissions() {
    for (tcp_pcb* p = tcp_active_pcbs; p; p = p->next) {
        if (!p->unacked) continue;
        p->nrtx = 0;
        p->rtime = 0;
        s16_t rto = static_cast<s16_t>((p->sa >> 3) + p->sv);
        if (rto > 0 && rto < p->rto) p->rto = rto;
        tcp_rexmit_rto(p);
    }
}

// A driver (re)started: get its MAC and link, share the frame buffers with it.
void nic_attach(Endpoint driver) {
    if (g_nic.driver != kNone && g_nic.driver != driver) driver_gone();
    Message m{};
    m.m_type = kNetInit;
    if (user::sendrec(driver, &m) != kOk || m.m_type != kOk) {
        if (m.m_type == kENoDev) return;  // a driver without a device
        print("inet: network driver %d did not initialise (%d)\n", driver, m.m_type);
        return;
    }
    int64_t tx = make_grant(driver, g_tx, sizeof g_tx, kGrantRead);
    int64_t rx = make_grant(driver, g_rx, sizeof g_rx, kGrantWrite);
    if (tx < 0 || rx < 0) {
        print("inet: cannot grant frame buffers to the driver\n");
        return;
    }
    g_nic.driver = driver;
    g_nic.tx_grant = static_cast<uint64_t>(tx), g_nic.rx_grant = static_cast<uint64_t>(rx);
    bool link = m.u64[1] != 0;
    if (!g_nic.added) {
        memcpy(g_nic.nif.hwaddr, m.bytes, 6);
        netif_add(&g_nic.nif, &g_nic.addr, &g_nic.mask, &g_nic.gw, nullptr, nic_init,
                  ethernet_input);
        netif_set_default(&g_nic.nif);
        netif_set_up(&g_nic.nif);
        g_nic.added = true;
        if (link) netif_set_link_up(&g_nic.nif);
        if (g_nic.dhcp) dhcp_start(&g_nic.nif);
    } else if (link) {
        netif_set_link_up(&g_nic.nif);
        kick_retransmissions();
    }
    const uint8_t* mac = g_nic.nif.hwaddr;
    print("inet: en0 on driver %d, MAC %02x:%02x:%02x:%02x:%02x:%02x, link %s\n", driver, mac[0],
          mac[1], mac[2], mac[3], mac[4], mac[5], link ? "up" : "down");
    nic_poll();
}

// A notification from a process other than RS and the kernel: the driver, or a new one.
void driver_notify(Endpoint from) {
    if (from == g_nic.driver) return nic_poll();
    Message k{};
    k.u64[0] = static_cast<uint64_t>(endpoint_slot(from));
    if (user::kernel_call(kSysProcInfo, &k) != kOk) return;
    ProcInfo info;
    memcpy(&info, k.bytes, sizeof info);
    if (info.endpoint == from && strncmp(info.name, "vnet", 4) == 0) nic_attach(from);
}

bool parse_ip(const char* s, ip4_addr_t* out, int* prefix) {
    uint32_t parts[4];
    for (int i = 0; i < 4; ++i) {
        uint32_t v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 4)
            v = v * 10 + static_cast<uint32_t>(*s++ - '0'), ++digits;
        if (!digits || v > 255) return false;
        parts[i] = v;
        if (i < 3 && *s++ != '.') return false;
    }
    IP4_ADDR(out, parts[0], parts[1], parts[2], parts[3]);
    if (prefix) {
        *prefix = 24;
        if (*s == '/') {
            int64_t n;
            char num[4] = {};
            for (int i = 0; i < 3 && s[1 + i] >= '0' && s[1 + i] <= '9'; ++i) num[i] = s[1 + i];
            if (!sys::parse_int(num, &n) || n < 0 || n > 32) return false;
            *prefix = static_cast<int>(n);
        }
    }
    return true;
}

void parse_args(const char* args) {
    for (const char* p = args; *p;) {
        while (*p == ' ') ++p;
        if (strncmp(p, "ip=dhcp", 7) == 0) {
            g_nic.dhcp = true;
        } else if (strncmp(p, "ip=", 3) == 0) {
            int prefix;
            if (parse_ip(p + 3, &g_nic.addr, &prefix)) {
                uint32_t mask = prefix ? ~0u << (32 - prefix) : 0;
                ip4_addr_set_u32(&g_nic.mask, lwip_htonl(mask));
            } else {
                print("inet: bad address in \"%s\"\n", p);
            }
        } else if (strncmp(p, "gw=", 3) == 0) {
            if (!parse_ip(p + 3, &g_nic.gw, nullptr)) print("inet: bad gateway in \"%s\"\n", p);
        }
        while (*p && *p != ' ') ++p;
    }
}

// ---- requests ----

Socket* owned(Endpoint who, int64_t id) {
    if (id < 0 || id >= kMaxSockets) return nullptr;
    Socket* s = &g_sockets[id];
    return s->used && s->owner == who ? s : nullptr;
}

ip_addr_t to_ip(uint64_t a) {
    ip_addr_t r;
    ip_addr_set_ip4_u32(&r, static_cast<uint32_t>(a));
    return r;
}

int32_t do_socket(Endpoint who, Message* m) {
    int64_t type = m->i64[0];
    if (type != kSockStream && type != kSockDgram && type != kSockRaw) return kEInetAfNoSupport;
    if (type == kSockRaw && (m->i64[1] <= 0 || m->i64[1] > 255)) return kEInval;
    int id = alloc_socket();
    if (id < 0) return kEInetNoBufs;
    Socket* s = &g_sockets[id];
    s->owner = who;
    s->type = type;
    if (type == kSockStream) {
        tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
        if (pcb) setup_tcp(s, pcb);
    } else if (type == kSockDgram) {
        s->udp = udp_new_ip_type(IPADDR_TYPE_V4);
        if (s->udp) udp_recv(s->udp, on_udp_recv, s);
    } else {
        s->raw = raw_new_ip_type(IPADDR_TYPE_V4, static_cast<u8_t>(m->i64[1]));
        if (s->raw) raw_recv(s->raw, on_raw_recv, s);
    }
    if (!s->tcp && !s->udp && !s->raw) {
        free_socket(s);
        return kEInetNoBufs;
    }
    if (s->tcp) ip_set_option(s->tcp, SOF_REUSEADDR);
    return id;
}

int32_t do_bind(Socket* s, Message* m) {
    if (m->u64[2] > 0xffff) return kEInval;
    ip_addr_t a = to_ip(m->u64[1]);
    u16_t port = static_cast<u16_t>(m->u64[2]);
    err_t e = ERR_VAL;
    if (s->tcp)
        e = tcp_bind(s->tcp, &a, port);
    else if (s->udp)
        e = udp_bind(s->udp, &a, port);
    else if (s->raw)
        e = raw_bind(s->raw, &a);
    return from_err(e);
}

int32_t do_listen(Socket* s, Message* m) {
    if (!s->tcp) return kEInetOpNotSupp;
    if (s->listening) return 0;
    int64_t backlog = m->i64[1] < 1 ? 1 : m->i64[1] > kBacklogMax ? kBacklogMax : m->i64[1];
    err_t e;
    tcp_pcb* l = tcp_listen_with_backlog_and_err(s->tcp, static_cast<u8_t>(backlog), &e);
    if (!l) return from_err(e);
    s->tcp = l;  // the old pcb is freed
    s->listening = true;
    s->backlog = static_cast<int>(backlog);
    tcp_arg(l, s);
    tcp_accept(l, on_tcp_accept);
    return 0;
}

// The requests that may wait; false: answered later.
bool do_waiting(Endpoint who, Socket* s, Message* m) {
    if (s->waiter != kNone) return reply(who, m, kEBusy), true;
    switch (m->m_type) {
        case kInetAccept:
            if (!s->listening) return reply(who, m, kEInval), true;
            defer(s, who, *m);
            hand_out(s);
            return false;
        case kInetConnect: {
            if (m->u64[2] > 0xffff) return reply(who, m, kEInval), true;
            ip_addr_t a = to_ip(m->u64[1]);
            u16_t port = static_cast<u16_t>(m->u64[2]);
            if (s->udp) return reply(who, m, from_err(udp_connect(s->udp, &a, port))), true;
            if (s->raw) return reply(who, m, from_err(raw_connect(s->raw, &a))), true;
            if (!s->tcp || s->listening)
                return reply(who, m, s->error ? s->error : kEInetIsConn), true;
            if (s->tcp->state != CLOSED) return reply(who, m, kEInetIsConn), true;
            s->connecting = true;
            err_t e = tcp_connect(s->tcp, &a, port, on_tcp_connected);
            if (e != ERR_OK) return s->connecting = false, reply(who, m, from_err(e)), true;
            defer(s, who, *m);
            return false;
        }
        case kInetRecv:
            if (try_recv(s, who, m)) return true;
            if (m->u64[5] & kMsgDontWait) return reply(who, m, kEInetAgain), true;
            defer(s, who, *m);
            return false;
        case kInetSend: {
            if (s->type == kSockStream) {
                if (try_send_stream(s, who, m)) return true;
                if (m->u64[5] & kMsgDontWait) return reply(who, m, kEInetAgain), true;
                defer(s, who, *m);
                return false;
            }
            size_t n = m->u64[2];
            if (n > kStagingSize) return reply(who, m, kEInval), true;
            pbuf* p = pbuf_alloc(PBUF_TRANSPORT, static_cast<u16_t>(n), PBUF_RAM);
            if (!p) return reply(who, m, kEInetNoBufs), true;
            if (n && !copy_from_client(who, m->u64[1], n)) {
                pbuf_free(p);
                return reply(who, m, kEFault), true;
            }
            pbuf_take(p, g_staging, static_cast<u16_t>(n));
            err_t e;
            if (m->u64[3] || m->u64[4]) {
                if (m->u64[4] > 0xffff) return pbuf_free(p), reply(who, m, kEInval), true;
                ip_addr_t a = to_ip(m->u64[3]);
                e = s->udp ? udp_sendto(s->udp, p, &a, static_cast<u16_t>(m->u64[4]))
                           : raw_sendto(s->raw, p, &a);
            } else {
                e = s->udp ? udp_send(s->udp, p) : raw_send(s->raw, p);
            }
            pbuf_free(p);
            return reply(who, m, e == ERR_OK ? static_cast<int32_t>(n) : from_err(e)), true;
        }
    }
    return reply(who, m, kENoSys), true;
}

int32_t do_getname(Socket* s, Message* m) {
    bool peer = m->i64[1] != 0;
    if (s->tcp) {
        m->u64[1] = addr_of(peer ? &s->tcp->remote_ip : &s->tcp->local_ip);
        m->u64[2] = peer ? s->tcp->remote_port : s->tcp->local_port;
    } else if (s->udp) {
        m->u64[1] = addr_of(peer ? &s->udp->remote_ip : &s->udp->local_ip);
        m->u64[2] = peer ? s->udp->remote_port : s->udp->local_port;
    } else if (s->raw) {
        m->u64[1] = addr_of(peer ? &s->raw->remote_ip : &s->raw->local_ip);
        m->u64[2] = 0;
    } else {
        return kEInetNotConn;
    }
    return 0;
}

int32_t do_ifinfo(Message* m) {
    netif* n = nullptr;
    int64_t index = m->i64[0];
    if (index == 0) {
        NETIF_FOREACH(n) {
            if (n->name[0] == 'l' && n->name[1] == 'o') break;
        }
    } else if (index == 1 && g_nic.added) {
        n = &g_nic.nif;
    }
    if (!n) return kENoDev;
    InetIfInfo info{};
    bool lo = n != &g_nic.nif;
    memcpy(info.name, lo ? "lo0" : "en0", 4);
    info.address = ip4_addr_get_u32(netif_ip4_addr(n));
    info.netmask = ip4_addr_get_u32(netif_ip4_netmask(n));
    info.gateway = ip4_addr_get_u32(netif_ip4_gw(n));
    memcpy(info.mac, n->hwaddr, 6);
    info.flags =
        static_cast<uint16_t>((netif_is_up(n) ? kIfUp : 0) | (netif_is_link_up(n) ? kIfLinkUp : 0) |
                              (lo ? kIfLoopback : 0) | (!lo && g_nic.dhcp ? kIfDhcp : 0));
    info.mtu = n->mtu;
    info.rx_frames = lo ? 0 : g_nic.rx_frames;
    info.tx_frames = lo ? 0 : g_nic.tx_frames;
    memset(m->bytes, 0, sizeof m->bytes);
    memcpy(m->bytes, &info, sizeof info);
    return 0;
}

int32_t do_ifset(Message* m) {
    if (m->i64[0] != 1) return kEInval;
    g_nic.addr.addr = static_cast<uint32_t>(m->u64[1]);
    g_nic.mask.addr = static_cast<uint32_t>(m->u64[2]);
    g_nic.gw.addr = static_cast<uint32_t>(m->u64[3]);
    if (g_nic.added) {
        if (g_nic.dhcp) dhcp_stop(&g_nic.nif), g_nic.dhcp = false;
        netif_set_addr(&g_nic.nif, &g_nic.addr, &g_nic.mask, &g_nic.gw);
    }
    return 0;
}

void request(Message* m) {
    Endpoint who = m->m_source;
    switch (m->m_type) {
        case kInetSocket:
            return reply(who, m, do_socket(who, m));
        case kInetIfInfo:
            return reply(who, m, do_ifinfo(m));
        case kInetIfSet:
            return reply(who, m, do_ifset(m));
        case kInetBind:
        case kInetListen:
        case kInetAccept:
        case kInetConnect:
        case kInetSend:
        case kInetRecv:
        case kInetClose:
        case kInetGetName:
            break;
        default:
            return reply(who, m, kENoSys);
    }
    Socket* s = owned(who, m->i64[0]);
    if (!s) return reply(who, m, kEInetBadF);
    switch (m->m_type) {
        case kInetBind:
            return reply(who, m, do_bind(s, m));
        case kInetListen:
            return reply(who, m, do_listen(s, m));
        case kInetGetName:
            return reply(who, m, do_getname(s, m));
        case kInetClose:
            free_socket(s);
            return reply(who, m, 0);
        default:
            do_waiting(who, s, m);
            return;
    }
}

// Sockets whose owner died are closed (a waiting owner is noticed when its reply fails).
void sweep_dead_owners() {
    for (Socket& s : g_sockets) {
        if (!s.used || s.owner == kNone) continue;
        Message k{};
        k.u64[0] = static_cast<uint64_t>(endpoint_slot(s.owner));
        bool alive = user::kernel_call(kSysProcInfo, &k) == kOk;
        if (alive) {
            ProcInfo info;
            memcpy(&info, k.bytes, sizeof info);
            alive = info.endpoint == s.owner;
        }
        if (!alive) free_socket(&s);
    }
}

void expire_timeouts(uint64_t now) {
    for (Socket& s : g_sockets)
        if (s.used && s.waiter != kNone && s.deadline_ns && s.deadline_ns <= now)
            finish(&s, kEInetTimedOut);
}

// No delayed ACKs: lwIP would hold an odd segment's ACK for its 250 ms timer, stalling a
// sender whose window is full. INET handles frames in batches, so acknowledging at the
// end of each event still coalesces ACKs.
void flush_acks() {
    for (tcp_pcb* p = tcp_active_pcbs; p; p = p->next)
        if (p->flags & TF_ACK_DELAY) {
            tcp_ack_now(p);
            tcp_output(p);
        }
}

uint64_t g_alarm_at = 0;
uint64_t g_next_sweep = 0;
constexpr uint64_t kSweepNs = 2000000000ull;

void arm_alarm(uint64_t now) {
    uint64_t next = now + static_cast<uint64_t>(sys_timeouts_sleeptime()) * 1000000;
    if (next > g_next_sweep) next = g_next_sweep;
    for (const Socket& s : g_sockets)
        if (s.used && s.waiter != kNone && s.deadline_ns && s.deadline_ns < next)
            next = s.deadline_ns;
    if (g_alarm_at && g_alarm_at <= next && g_alarm_at > now) return;  // an earlier one stands
    Message a{};
    a.u64[0] = next > now ? next - now : 1000;
    user::kernel_call(kSysSetAlarm, &a);
    g_alarm_at = next;
}

}  // namespace

int main(const char* args) {
    parse_args(args);
    lwip_init();  // also lo0, 127.0.0.1/8
    Endpoint drv = user::find("vnet");
    if (drv != kNone) nic_attach(drv);
    print("inet: up%s\n", g_nic.added ? "" : " (no network driver yet)");
    uint64_t now = user::uptime_ns();
    g_next_sweep = now + kSweepNs;
    arm_alarm(now);
    for (;;) {
        Message m{};
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == kClock) {
                g_alarm_at = 0;
            } else if (m.m_source == user::parent()) {
                user::notify(m.m_source);  // RS's heartbeat
            } else if (m.m_source != kSystem && m.m_source != kHardware) {
                driver_notify(m.m_source);
            }
        } else {
            request(&m);
        }
        netif_poll_all();  // loopback traffic
        sys_check_timeouts();
        flush_acks();
        netif_poll_all();
        nic_flush();
        now = user::uptime_ns();
        expire_timeouts(now);
        if (now >= g_next_sweep) {
            sweep_dead_owners();
            g_next_sweep = now + kSweepNs;
        }
        arm_alarm(now);
    }
}
