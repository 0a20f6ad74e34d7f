// TTY, the console driver: reads COM1 (its ports and IRQ 4 are its privileges), and takes
// what vcons (the virtio-console driver) receives (kTtyInput), all the time, so that ^C reaches it
// while a program runs: ^C throws away the input not yet read and sends SIGINT (through PM) to the
// foreground process the shell named (kTtySetForeground). Other input waits in a buffer
// (typed-ahead input for the program or the shell) and is edited (backspace, ^U), echoed and handed
// out a line at a time when a reader asks (kTtyRead), so it does not mix into a running program's
// output.
//
// TTY is also the one writer of the console's output: programs' writes (kTtyWrite) and the echo
// go into one ring, in order. While the console driver (vcons) is up it takes the ring out in
// batches into its transmit buffers (kTtyOutput) and says how much its device has sent; bytes
// are dropped from the ring only then, so those a killed driver had not sent go out again
// (through its successor, or directly). Without a driver TTY writes the ring straight to the VMM
// endpoint (the hypercall console; COM1 on QEMU), and lets writers do that themselves when
// nothing is queued (kTtyWriteSelf), which costs them no copy through TTY.
#include "sys.hpp"

using namespace ukvm::kernel;

namespace {

constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kRbr = 0, kIer = 1, kMcr = 4, kLsr = 5;
constexpr int kIrq = 4;

int32_t outb(uint16_t port, uint8_t v) {
    Message m{};
    m.u64[0] = port, m.u64[1] = 1, m.u64[2] = 1, m.u64[3] = v;
    return user::kernel_call(kSysDevIo, &m);
}
int32_t inb(uint16_t port, uint8_t* v) {
    Message m{};
    m.u64[0] = port, m.u64[1] = 1, m.u64[2] = 0;
    int32_t r = user::kernel_call(kSysDevIo, &m);
    *v = static_cast<uint8_t>(m.u64[0]);
    return r;
}

// Cooked input: complete lines waiting for a reader.
char g_cooked[2048];
size_t g_cooked_len = 0;
// The line being edited.
char g_line[256];
size_t g_line_len = 0;
// Raw input not yet edited: what was typed ahead of the readers.
char g_raw[1024];
size_t g_raw_len = 0;
// Readers blocked in kTtyRead, in arrival order.
Endpoint g_readers[8];
int g_nr_readers = 0;
int32_t g_foreground = 0;  // pid that ^C signals (0: none)

// Console output: ring positions count every byte ever queued. [g_tail, g_sent) is with the
// driver, not yet sent by its device; [g_sent, g_head) waits in the ring.
constexpr size_t kOutSize = 32 * 1024;
char g_out[kOutSize];
uint64_t g_tail = 0, g_sent = 0, g_head = 0;
Endpoint g_driver = kNone;   // the console driver while it is up
bool g_driver_idle = false;  // it has taken everything and waits for a notification
// The watchdog: a driver that stops taking output while there is some (killed, or stuck)
// is checked after kWatchNs; a dead or silent one is dropped and TTY writes directly.
constexpr uint64_t kWatchNs = 200000000;
constexpr int kMaxStalls = 5;
uint64_t g_driver_calls = 0, g_calls_at_alarm = 0;
bool g_alarm = false;
int g_stalls = 0;

size_t out_room() {
    return kOutSize - static_cast<size_t>(g_head - g_tail);
}

// Copies n bytes (n <= out_room()) into the ring from s, or from a writer's grant.
void out_put(const char* s, size_t n) {
    while (n > 0) {
        const size_t at = g_head % kOutSize;
        const size_t piece = n < kOutSize - at ? n : kOutSize - at;
        memcpy(g_out + at, s, piece);
        g_head += piece, s += piece, n -= piece;
    }
}
int32_t out_put_grant(Endpoint from, uint64_t grant, size_t n) {
    for (size_t done = 0; done < n;) {
        const size_t at = (g_head + done) % kOutSize;
        const size_t piece = n - done < kOutSize - at ? n - done : kOutSize - at;
        Message c{};
        c.u64[0] = static_cast<uint64_t>(from), c.u64[1] = grant, c.u64[2] = done;
        c.u64[3] = reinterpret_cast<uintptr_t>(g_out + at), c.u64[4] = piece;
        if (int32_t r = user::kernel_call(kSysSafeCopyFrom, &c); r != kOk) return r;
        done += piece;
    }
    g_head += n;
    return kOk;
}

// Callers of kTtyDrain, each waiting until the ring's tail reaches its position.
struct Drainer {
    Endpoint who;
    uint64_t until;
};
Drainer g_drainers[8];
int g_nr_drainers = 0;

void serve_drainers() {
    for (int i = 0; i < g_nr_drainers;) {
        if (g_drainers[i].until > g_tail) {
            ++i;
            continue;
        }
        Message m{};
        m.m_type = kOk;
        user::sendnb(g_drainers[i].who, &m);
        g_drainers[i] = g_drainers[--g_nr_drainers];
    }
}

void drain_request(Message& m) {
    for (int i = 0; i < g_nr_drainers; ++i)
        if (g_drainers[i].who == m.m_source) g_drainers[i] = g_drainers[--g_nr_drainers];
    if (g_head == g_tail || g_nr_drainers == 8) {
        m.m_type = g_head == g_tail ? kOk : kEBusy;
        user::sendnb(m.m_source, &m);
        return;
    }
    g_drainers[g_nr_drainers++] = {m.m_source, g_head};
}

// Everything not yet confirmed sent, straight to the VMM endpoint.
void flush_direct() {
    while (g_tail != g_head) {
        const size_t at = g_tail % kOutSize;
        const size_t n = g_head - g_tail < kOutSize - at ? g_head - g_tail : kOutSize - at;
        user::write_direct(g_out + at, n);
        g_tail += n;
    }
    g_sent = g_tail;
    serve_drainers();
}

void drop_driver() {
    g_driver = kNone;
    g_driver_idle = false;
    flush_direct();
}

void arm_watchdog() {
    if (g_alarm) return;
    Message a{};
    a.u64[0] = kWatchNs;
    g_alarm = user::kernel_call(kSysSetAlarm, &a) == kOk;
    g_calls_at_alarm = g_driver_calls;
}

// New output is in the ring: wake the driver, or write it out directly.
void kick() {
    if (g_driver == kNone) return flush_direct();
    if (g_driver_idle) {
        g_driver_idle = false;
        if (user::notify(g_driver) != kOk) return drop_driver();
    }
    arm_watchdog();
}

void watchdog() {
    g_alarm = false;
    if (g_driver == kNone || g_head == g_tail) return;
    if (g_driver_calls != g_calls_at_alarm) {
        g_stalls = 0;
    } else if (user::notify(g_driver) != kOk || ++g_stalls == kMaxStalls) {
        g_stalls = 0;
        return drop_driver();
    }
    arm_watchdog();
}

// Writers waiting for room in the ring, in arrival order.
struct Writer {
    Endpoint who;
    uint64_t count, grant;             // grant: kTtyInline for bytes in the message
    char bytes[proto::kTtyInlineMax];  // those bytes
};
Writer g_writers[8];
int g_nr_writers = 0;

// Takes a writer's bytes when they fit (false: not now); replies when done.
bool take_write(const Writer& w) {
    if (w.count > out_room()) return false;
    Message m{};
    m.m_type = kOk;
    if (w.grant == proto::kTtyInline)
        out_put(w.bytes, w.count);
    else
        m.m_type = out_put_grant(w.who, w.grant, w.count);
    user::sendnb(w.who, &m);
    return true;
}

// Writers that waited, once there is room again.
void serve_writers() {
    bool taken = false;
    while (g_nr_writers > 0 && take_write(g_writers[0])) {
        memcpy(g_writers, g_writers + 1, sizeof(Writer) * --g_nr_writers);
        taken = true;
    }
    if (taken) kick();
}

void write_request(Message& m) {
    Writer w{m.m_source, m.u64[0], m.u64[1], {}};
    const bool inline_bytes = w.grant == proto::kTtyInline;
    if (w.count > (inline_bytes ? proto::kTtyInlineMax : proto::kTtyWriteMax)) {
        m.m_type = kEInval;
        user::sendnb(w.who, &m);
        return;
    }
    if (inline_bytes) memcpy(w.bytes, m.bytes + proto::kTtyInlineOffset, w.count);
    for (int i = 0; i < g_nr_writers; ++i) {
        if (g_writers[i].who == w.who) {  // its earlier write was interrupted by a signal
            memcpy(g_writers + i, g_writers + i + 1, sizeof(Writer) * (g_nr_writers - i - 1));
            --g_nr_writers;
            break;
        }
    }
    if (g_driver == kNone && g_head == g_tail && !inline_bytes) {
        m.m_type = kOk;
        m.u64[0] = proto::kTtyWriteSelf;
        user::sendnb(w.who, &m);
        return;
    }
    if (g_nr_writers == 0 && take_write(w)) return kick();
    if (g_nr_writers == 8) {
        m.m_type = kEBusy;
        user::sendnb(w.who, &m);
        return;
    }
    g_writers[g_nr_writers++] = w;
}

// The driver's call: what its device sent is done with; more bytes into its buffer.
void output_request(Message& m) {
    const Endpoint from = m.m_source;
    if (from != g_driver) {  // a new driver (or a restarted one): it gets what is unsent
        g_driver = from;
        g_sent = g_tail;
    } else {
        const uint64_t done = m.u64[2] < g_sent - g_tail ? m.u64[2] : g_sent - g_tail;
        g_tail += done;
    }
    ++g_driver_calls;
    const size_t at = g_sent % kOutSize;
    size_t n = g_head - g_sent < kOutSize - at ? g_head - g_sent : kOutSize - at;
    if (n > m.u64[1]) n = m.u64[1];
    int32_t r = kOk;
    if (n > 0) {
        Message c{};
        c.u64[0] = static_cast<uint64_t>(from), c.u64[1] = m.u64[0], c.u64[2] = m.u64[3];
        c.u64[3] = reinterpret_cast<uintptr_t>(g_out + at), c.u64[4] = n;
        r = user::kernel_call(kSysSafeCopyTo, &c);
    }
    if (r == kOk) g_sent += n;
    g_driver_idle = r == kOk && n == 0;
    m.m_type = r == kOk ? static_cast<int32_t>(n) : r;
    user::sendnb(from, &m);
    serve_drainers();
    serve_writers();
}

void echo(const char* s, size_t n) {
    if (n > out_room()) return;  // a full ring: the echo is lost, as on a stalled terminal
    out_put(s, n);
    kick();
}

void input(char c) {
    if (c == '\r') c = '\n';
    if (c == 0x7f || c == 0x08) {  // erase
        if (g_line_len) --g_line_len, echo("\b \b", 3);
        return;
    }
    if (c == 0x15) {  // ^U: kill the line
        for (; g_line_len; --g_line_len) echo("\b \b", 3);
        return;
    }
    if (c != '\n' && (static_cast<unsigned char>(c) < 0x20 || g_line_len + 1 == sizeof g_line))
        return;
    g_line[g_line_len++] = c;
    echo(&c, 1);
    if (c != '\n') return;
    if (g_cooked_len + g_line_len <= sizeof g_cooked) {
        memcpy(g_cooked + g_cooked_len, g_line, g_line_len);
        g_cooked_len += g_line_len;
    }
    g_line_len = 0;
}

// One byte from the UART; false when it holds none.
bool read_char(char* c) {
    uint8_t lsr = 0, v = 0;
    if (inb(kCom1 + kLsr, &lsr) != kOk || !(lsr & 1)) return false;
    if (inb(kCom1 + kRbr, &v) != kOk) return false;
    *c = static_cast<char>(v);
    return true;
}

// The receive interrupt is on while there is room for input (when the buffer is full,
// input waits in the UART).
void set_rx_interrupt(bool on) {
    static int state = -1;
    if (state == on) return;
    state = on;
    outb(kCom1 + kIer, on ? 0x01 : 0x00);
}

// Answers waiting readers while there are complete lines: up to one line each.
void serve() {
    while (g_nr_readers && g_cooked_len) {
        size_t n = 0;
        while (n < g_cooked_len && n < proto::kTtyDataMax && g_cooked[n++] != '\n') {
        }
        Message m{};
        m.m_type = static_cast<int32_t>(n);
        memcpy(m.bytes + proto::kTtyDataOffset, g_cooked, n);
        Endpoint reader = g_readers[0];
        memcpy(g_readers, g_readers + 1, sizeof(Endpoint) * --g_nr_readers);
        if (user::sendnb(reader, &m) != kOk) continue;     // gone: the line stays for the next
        memcpy(g_cooked, g_cooked + n, g_cooked_len - n);  // (forward copy: safe here)
        g_cooked_len -= n;
    }
}

// ^C: the input so far is dropped (POSIX's flush on INTR) and the foreground process gets
// SIGINT.
void interrupt() {
    echo("^C\n", 3);
    g_raw_len = g_line_len = g_cooked_len = 0;
    if (g_foreground != 0) sys::kill(g_foreground, proto::kSigInt);
}

int complete_lines() {
    int n = 0;
    for (size_t i = 0; i < g_cooked_len; ++i) n += g_cooked[i] == '\n';
    return n;
}

// Edits raw input into lines while readers wait for more lines than there are.
void cook() {
    size_t used = 0;
    while (used < g_raw_len && complete_lines() < g_nr_readers) input(g_raw[used++]);
    memcpy(g_raw, g_raw + used, g_raw_len - used);  // (forward copy: safe here)
    g_raw_len -= used;
}

// One typed byte: ^C at once, anything else into the raw buffer (dropped when it is full).
void take(char c) {
    if (c == 0x03)
        interrupt();
    else if (g_raw_len < sizeof g_raw)
        g_raw[g_raw_len++] = c;
}

// Reads everything the UART has while there is room, then answers the readers it can.
void pump() {
    for (;;) {
        cook();
        serve();
        char c;
        if (g_raw_len == sizeof g_raw || !read_char(&c)) break;
        take(c);
    }
    set_rx_interrupt(g_raw_len < sizeof g_raw);
}

void add_reader(Endpoint e) {
    for (int i = 0; i < g_nr_readers; ++i)
        if (g_readers[i] == e) return;  // its earlier read was interrupted by a signal
    g_readers[g_nr_readers++] = e;
}

}  // namespace

int main(const char*) {
    Message m{};
    m.u64[0] = kIrq, m.u64[1] = 1;
    if (user::kernel_call(kSysIrqCtl, &m) != kOk) {
        user::print("tty: cannot subscribe to IRQ %d\n", kIrq);
        return 1;
    }
    outb(kCom1 + kMcr, 0x0b);  // DTR, RTS, OUT2 (the interrupt gate on a PC)
    pump();                    // what came before us, and the receive interrupt on
    // A console driver already up (this TTY was restarted) calls again when woken.
    if (Endpoint driver = user::find("vcons"); driver != kNone) user::notify(driver);
    for (;;) {
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == kHardware)
                pump();
            else if (m.m_source == kClock)
                watchdog();
            else if (m.m_source == user::parent())
                user::notify(m.m_source);  // RS's heartbeat
            continue;
        }
        if (m.m_type == proto::kTtyWrite) {
            write_request(m);
            continue;
        }
        if (m.m_type == proto::kTtyOutput) {
            output_request(m);
            continue;
        }
        if (m.m_type == proto::kTtyDrain) {
            drain_request(m);
            continue;
        }
        if (m.m_type == proto::kTtyInput) {  // from vcons: the virtio-console's input
            Endpoint from = m.m_source;
            uint64_t n = m.u64[0] < proto::kTtyDataMax ? m.u64[0] : proto::kTtyDataMax;
            char bytes[proto::kTtyDataMax];
            memcpy(bytes, m.bytes + proto::kTtyDataOffset, n);
            m.m_type = kOk;
            user::sendnb(from, &m);  // first: ^C below may wait for PM
            for (uint64_t i = 0; i < n; ++i) take(bytes[i]);
            pump();
            continue;
        }
        if (m.m_type == proto::kTtySetForeground) {
            g_foreground = static_cast<int32_t>(m.i64[0]);
            m.m_type = kOk;
            user::sendnb(m.m_source, &m);
            continue;
        }
        if (m.m_type != proto::kTtyRead || g_nr_readers == 8) {
            m.m_type = m.m_type != proto::kTtyRead ? kENoSys : kEBusy;
            user::sendnb(m.m_source, &m);
            continue;
        }
        add_reader(m.m_source);
        pump();
    }
}
