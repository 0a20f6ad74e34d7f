// TTY, the console driver: reads COM1 (its ports and IRQ 4 are its privileges), and takes
// what vcons (the virtio-console driver) receives (kTtyInput), all the time, so that ^C reaches it
// while a program runs: ^C throws away the input not yet read and sends SIGINT (through PM) to the
// foreground process the shell named (kTtySetForeground). Other input waits in a buffer
// (typed-ahead input for the program or the shell) and is edited (backspace, ^U), echoed and handed
// out a line at a time when a reader asks (kTtyRead), so it does not mix into a running program's
// output. Output does not pass through here: programs write to the console through the VMM endpoint
// (the hypercall console on ukvm, COM1 elsewhere).
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

void echo(const char* s, size_t n) {
    user::write(s, n);
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
    for (;;) {
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == kHardware)
                pump();
            else if (m.m_source == user::parent())
                user::notify(m.m_source);  // RS's heartbeat
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
