// conbench: the console's output paths. Usage:
//   conbench bench [KIB [SIZE]]  (default 32 KiB in 1024-byte writes) writes KIB KiB of text
//       lines in SIZE-byte writes, alternately through TTY (user::write: the virtio-console
//       when vcons runs it, timed until TTY says the device sent all of it) and straight to
//       the VMM endpoint (user::write_direct: the hypercall console, COM1 on QEMU), three
//       rounds each; prints the medians as one parsable line for bench/:
//         bench: console_kib=N write_bytes=N tty_kibps=N direct_kibps=N tty_us=N direct_us=N
//       (the _us figures are per write).
//   conbench lines N [SERVICE]  prints N numbered lines "conbench line I of N"; with SERVICE
//       (say vcons) kills it through PM halfway and goes on; then "conbench: done".
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

// The next word of args into out (at most n - 1 bytes); args moves past it.
bool word(const char*& args, char* out, size_t n) {
    while (*args == ' ') ++args;
    size_t i = 0;
    while (*args && *args != ' ') {
        if (i + 1 < n) out[i++] = *args;
        ++args;
    }
    out[i] = 0;
    return i > 0;
}

uint64_t median3(uint64_t a, uint64_t b, uint64_t c) {
    if (a > b) {
        uint64_t t = a;
        a = b, b = t;
    }
    return c < a ? a : c > b ? b : c;
}

// ns to write total bytes from buf in size-byte writes through one path.
uint64_t timed(bool tty, const char* buf, uint64_t total, uint64_t size) {
    const uint64_t t0 = user::uptime_ns();
    for (uint64_t done = 0; done < total; done += size) {
        const uint64_t n = total - done < size ? total - done : size;
        if (tty)
            user::write(buf, n);
        else
            user::write_direct(buf, n);
    }
    if (tty) sys::tty_drain();
    return user::uptime_ns() - t0;
}

int bench(const char* args) {
    char w[16];
    int64_t kib = 32, size = 1024;
    if (word(args, w, sizeof w) && (!sys::parse_int(w, &kib) || kib <= 0)) kib = 32;
    if (word(args, w, sizeof w) && (!sys::parse_int(w, &size) || size <= 0 || size > 65536))
        size = 1024;
    auto* buf = static_cast<char*>(malloc(static_cast<size_t>(size)));
    if (buf == nullptr) return 1;
    for (int64_t i = 0; i < size; ++i)  // 64-byte lines of text
        buf[i] = i % 64 == 63 ? '\n' : static_cast<char>('a' + i % 64 % 26);
    const uint64_t total = static_cast<uint64_t>(kib) * 1024;
    uint64_t t[2][3];
    sys::tty_drain();
    for (int round = 0; round < 3; ++round) {
        t[0][round] = timed(true, buf, total, static_cast<uint64_t>(size));
        t[1][round] = timed(false, buf, total, static_cast<uint64_t>(size));
    }
    const uint64_t tty_ns = median3(t[0][0], t[0][1], t[0][2]);
    const uint64_t direct_ns = median3(t[1][0], t[1][1], t[1][2]);
    const uint64_t writes = (total + static_cast<uint64_t>(size) - 1) / static_cast<uint64_t>(size);
    auto kibps = [&](uint64_t ns) { return ns ? total * 1000000000 / 1024 / ns : 0; };
    print(
        "\nbench: console_kib=%ld write_bytes=%ld tty_kibps=%lu direct_kibps=%lu tty_us=%lu "
        "direct_us=%lu\n",
        kib, size, kibps(tty_ns), kibps(direct_ns), tty_ns / writes / 1000,
        direct_ns / writes / 1000);
    return 0;
}

int lines(const char* args) {
    char w[16], service[16];
    int64_t n = 100;
    if (word(args, w, sizeof w) && (!sys::parse_int(w, &n) || n <= 0)) n = 100;
    const bool kill = word(args, service, sizeof service);
    for (int64_t i = 1; i <= n; ++i) {
        print("conbench line %ld of %ld\n", i, n);
        if (kill && i == n / 2) {
            const int32_t pid = sys::pid_of(service);
            const int32_t r = pid > 0 ? sys::kill(pid, proto::kSigKill) : kESrch;
            print("conbench: killed %s (pid %d): %d\n", service, pid, r);
        }
    }
    print("conbench: done\n");
    return 0;
}

}  // namespace

int main(const char* args) {
    char mode[16];
    const char* rest = args;
    if (!word(rest, mode, sizeof mode)) mode[0] = 0;
    if (strcmp(mode, "bench") == 0) return bench(rest);
    if (strcmp(mode, "lines") == 0) return lines(rest);
    print("usage: conbench bench [KIB [SIZE]] | conbench lines N [SERVICE]\n");
    return 2;
}
