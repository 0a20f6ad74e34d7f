// ifconfig: INET's interfaces (lo0, en0) with address, netmask, gateway, MAC, state and
// frame counters; "ifconfig en0 A.B.C.D/N [GATEWAY]" sets en0's address statically.
#include "socket.hpp"

using user::print;

namespace {

void show(const proto::InetIfInfo& i) {
    char a[16], m[16], g[16];
    inet_ntoa_r(in_addr{i.address}, a);
    inet_ntoa_r(in_addr{i.netmask}, m);
    inet_ntoa_r(in_addr{i.gateway}, g);
    print("%s: %s%s%s%s mtu %u\n", i.name, i.flags & proto::kIfUp ? "UP" : "DOWN",
          i.flags & proto::kIfLinkUp ? " LINK" : "",
          i.flags & proto::kIfLoopback ? " LOOPBACK" : "", i.flags & proto::kIfDhcp ? " DHCP" : "",
          i.mtu);
    print("    inet %s netmask %s gateway %s\n", a, m, g);
    if (!(i.flags & proto::kIfLoopback))
        print("    ether %02x:%02x:%02x:%02x:%02x:%02x rx %lu tx %lu frames\n", i.mac[0], i.mac[1],
              i.mac[2], i.mac[3], i.mac[4], i.mac[5], i.rx_frames, i.tx_frames);
}

}  // namespace

int main(const char* args) {
    if (!*args) {
        proto::InetIfInfo info;
        int n = 0;
        for (int i = 0; net::if_info(i, &info); ++i, ++n) show(info);
        if (!n) print("ifconfig: INET does not answer\n");
        return n ? 0 : 1;
    }
    char buf[40];
    strncpy(buf, args, sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    char* words[3] = {};
    int nw = 0;
    for (char* p = buf; *p && nw < 3;) {
        while (*p == ' ') *p++ = '\0';
        if (!*p) break;
        words[nw++] = p;
        while (*p && *p != ' ') ++p;
    }
    if (nw < 2 || strcmp(words[0], "en0") != 0) {
        print("usage: ifconfig [en0 A.B.C.D/N [GATEWAY]]\n");
        return 2;
    }
    int prefix = 24;
    if (char* slash = strchr(words[1], '/')) {
        *slash = '\0';
        int64_t v;
        if (!sys::parse_int(slash + 1, &v) || v < 0 || v > 32) {
            print("ifconfig: bad prefix length\n");
            return 2;
        }
        prefix = static_cast<int>(v);
    }
    in_addr addr{}, gw{};
    if (!inet_aton(words[1], &addr) || (words[2] && !inet_aton(words[2], &gw))) {
        print("ifconfig: bad address\n");
        return 2;
    }
    uint32_t mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
    if (net::if_set(1, addr.s_addr, mask, gw.s_addr) < 0) {
        print("ifconfig: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
