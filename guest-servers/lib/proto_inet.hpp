// INET's protocols (included by proto.hpp): BSD-style sockets for programs (kInet*), and
// the network-driver protocol between INET and a NIC driver (kNet*).
#pragma once

#include <ukvm/kernel.h>

namespace proto {

// INET, the TCP/IP server (lwIP). Sockets are small integers owned by the endpoint that
// made (or accepted) them; only the owner may use one. Addresses are IPv4 in network byte
// order in the low 32 bits of a u64, ports in host order. Data moves through a grant the
// caller makes for INET (kGrantRead for sends, kGrantWrite for receives). Calls that must
// wait (accept, connect, recv with nothing queued, send with a full window) are answered
// when they can complete; INET itself never blocks on a client. Errors are Linux errno
// values, negated (kEInet*).
enum InetCall : int32_t {
    kInetSocket = 0x600,   // i64[0] type (kSock*), i64[1] protocol (raw: IP protocol) -> socket
    kInetBind = 0x601,     // i64[0] socket, u64[1] address, u64[2] port -> 0
    kInetListen = 0x602,   // i64[0] socket, i64[1] backlog -> 0
    kInetAccept = 0x603,   // i64[0] socket -> new socket; u64[1] peer address, u64[2] port
    kInetConnect = 0x604,  // i64[0] socket, u64[1] address, u64[2] port -> 0 once connected
    kInetSend = 0x605,     // i64[0] socket, u64[1] grant, u64[2] length, u64[3] address and
                           // u64[4] port (datagrams: the destination; 0: the connected
                           // peer), u64[5] kMsg* flags -> bytes taken (> 0 unless length 0)
    kInetRecv = 0x606,     // i64[0] socket, u64[1] grant, u64[2] length, u64[5] kMsg* flags,
                           // u64[6] timeout in ms (0: none) -> bytes (0: end of stream);
                           // u64[3] address, u64[4] port of the sender. A datagram longer
                           // than length is cut.
    kInetClose = 0x607,    // i64[0] socket -> 0
    kInetGetName = 0x608,  // i64[0] socket, i64[1] 0 local / 1 peer -> u64[1] address, u64[2] port
    kInetIfInfo = 0x609,   // i64[0] interface index -> InetIfInfo in bytes (kENoDev past the end)
    kInetIfSet = 0x60a,    // i64[0] index, u64[1] address, u64[2] netmask, u64[3] gateway -> 0
};
enum InetSockType : int64_t { kSockStream = 1, kSockDgram = 2, kSockRaw = 3 };
inline constexpr uint64_t kMsgDontWait = 0x40;  // Linux's MSG_DONTWAIT: kEInetAgain, not a wait
inline constexpr uint64_t kMsgPeek = 0x2;       // Linux's MSG_PEEK: data stays queued

struct InetIfInfo {
    char name[8];                        // "lo0", "en0"
    uint32_t address, netmask, gateway;  // network byte order
    uint8_t mac[6];
    uint16_t flags;  // kIf*
    uint16_t mtu;
    uint8_t pad[2];
    uint64_t rx_frames, tx_frames;
};
static_assert(sizeof(InetIfInfo) <= 56);
inline constexpr uint16_t kIfUp = 1, kIfLinkUp = 2, kIfLoopback = 4, kIfDhcp = 8;

inline constexpr int32_t kEInetBadF = -9;
inline constexpr int32_t kEInetAgain = -11;
inline constexpr int32_t kEInetNoMem = -12;
inline constexpr int32_t kEInetPipe = -32;
inline constexpr int32_t kEInetAfNoSupport = -97;
inline constexpr int32_t kEInetAddrInUse = -98;
inline constexpr int32_t kEInetConnAborted = -103;
inline constexpr int32_t kEInetConnReset = -104;
inline constexpr int32_t kEInetNoBufs = -105;
inline constexpr int32_t kEInetIsConn = -106;
inline constexpr int32_t kEInetNotConn = -107;
inline constexpr int32_t kEInetTimedOut = -110;
inline constexpr int32_t kEInetConnRefused = -111;
inline constexpr int32_t kEInetHostUnreach = -113;
inline constexpr int32_t kEInetInProgress = -115;
inline constexpr int32_t kEInetOpNotSupp = -95;

// Network drivers (virtio-net: the program "vnet", a service of RS). INET is the driver's
// only client and calls it with SENDREC; the driver answers at once (it never waits for
// the device), and NOTIFYs INET when frames have arrived, when the link changes and once
// when it has started (INET then sends kNetInit; a restarted driver is found that way).
// Frames move through grants INET makes for the driver.
enum NetCall : int32_t {
    kNetInit = 0x700,  // -> 0; bytes[0..6) MAC, u64[1] link up (0/1), u64[2] MTU
    kNetSend = 0x701,  // u64[0] grant (kGrantRead), u64[1] bytes, u64[2] frame count: the
                       // frames as {u16 length, frame, pad to 2} records -> frames queued
                       // (the rest were dropped: transmit ring full), kEInval
    kNetRecv = 0x702,  // u64[0] grant (kGrantWrite), u64[1] its size -> frames copied; the
                       // grant holds them as {u16 length, frame, pad to 2} records;
                       // u64[1] link up (0/1)
};
inline constexpr size_t kNetFrameMax = 1514;  // Ethernet header + 1500

}  // namespace proto
