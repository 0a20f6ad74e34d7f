// TTY, the console driver: reads COM1 (its ports and IRQ 4 are its privileges), echoes and
// edits input a line at a time, and hands complete lines to readers (kTtyRead). It reads
// only while someone waits for a line, so typed-ahead input waits in the UART (and
// survives a restart of TTY) and is echoed when it is read. Output
// does not pass through here: programs write to the console through the VMM endpoint
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
// Readers blocked in kTtyRead, in arrival order.
Endpoint g_readers[8];
int g_nr_readers = 0;

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

// The receive interrupt is on only while a reader waits (input otherwise stays in the
// UART, where a restarted TTY finds it).
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

// Reads the UART only as far as waiting readers need: until each has a line.
void pump() {
    for (;;) {
        serve();
        char c;
        if (!g_nr_readers || !read_char(&c)) break;
        input(c);
    }
    set_rx_interrupt(g_nr_readers > 0);
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
    set_rx_interrupt(false);   // until a reader comes
    for (;;) {
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage) {
            if (m.m_source == kHardware)
                pump();
            else if (m.m_source == user::parent())
                user::notify(m.m_source);  // RS's heartbeat
            continue;
        }
        if (m.m_type != proto::kTtyRead || g_nr_readers == 8) {
            m.m_type = m.m_type != proto::kTtyRead ? kENoSys : kEBusy;
            user::sendnb(m.m_source, &m);
            continue;
        }
        g_readers[g_nr_readers++] = m.m_source;
        pump();
    }
}
