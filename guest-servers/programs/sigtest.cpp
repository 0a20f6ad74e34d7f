// sigtest: signals through PM. Handlers run for a signal sent to oneself (before kill
// returns) and for one sent to a busy child; a handler interrupts a sleep in PM (kEIntr);
// SIG_IGN and the default actions (terminate, SIGCHLD ignored); SIGKILL cannot be caught;
// wait reports the killing signal; SIGCHLD reaches a parent's handler; handlers survive
// fork. Prints "N passed, M failed"; exits with M.
//
// For ^C from the console: `sigtest sleep` sleeps for a minute (SIGINT's default ends
// it); `sigtest read` reads one console line with a SIGINT handler, so ^C makes the read
// return EINTR (and typed-ahead input is what it reads). `sigtest term` waits for SIGTERM
// (a clean shutdown's warning from PM), says so and exits.
#include "sys.hpp"
#include "tally.hpp"

using namespace ukvm::kernel;
using tally::check;
using user::print;

namespace {

volatile int g_got = 0;    // the last signal a handler saw
volatile int g_count = 0;  // handler runs
int32_t g_parent = 0;      // for a child to signal its parent
volatile int g_chld = 0;

void on_signal(int sig) {
    g_got = sig;
    g_count = g_count + 1;
}

void on_chld(int) {
    g_chld = g_chld + 1;
}

// Forks a child that runs body() and exits with its result.
template <typename Body>
int32_t child(Body body) {
    int32_t pid = sys::fork();
    if (pid == 0) user::exit(body());
    return pid;
}

bool wait_for(int32_t pid, uint64_t reason, uint64_t detail) {
    sys::WaitStatus st{};
    int32_t r = sys::wait(pid, &st);
    if (r != pid || st.reason != reason || st.detail != detail)
        print("sigtest: wait(%d) -> %d, reason %lu, detail %lu (want %lu, %lu)\n", pid, r,
              st.reason, st.detail, reason, detail);
    return r == pid && st.reason == reason && st.detail == detail;
}

constexpr uint64_t kMs = 1000000;

int console_modes(const char* args) {
    if (strcmp(args, "term") == 0) {
        sys::signal(proto::kSigTerm, on_signal);
        print("sigtest: waiting for SIGTERM\n");
        while (g_got != proto::kSigTerm) sys::sleep_ns(60000 * kMs);
        print("sigtest: caught SIGTERM, cleaning up\n");
        return 0;
    }
    if (strcmp(args, "sleep") == 0) {
        print("sigtest: sleeping; ^C ends me\n");
        sys::sleep_ns(60000 * kMs);
        return 1;
    }
    sys::signal(proto::kSigInt, on_signal);
    print("sigtest: reading a line; ^C interrupts\n");
    char line[proto::kTtyDataMax + 1];
    int32_t n = sys::read_line(line, sizeof line - 1);
    if (n == kEIntr) {
        print("sigtest: read interrupted by signal %d\n", g_got);
        return 0;
    }
    if (n < 0) return 2;
    if (n > 0 && line[n - 1] == '\n') --n;
    line[n] = '\0';
    print("sigtest: read '%s'\n", line);
    return 0;
}

}  // namespace

int main(const char* args) {
    if (*args) return console_modes(args);
    int32_t me = sys::getpid();

    // A handler for a signal to oneself runs before kill returns; the registers the
    // compiler keeps across the call survive it.
    check(sys::signal(proto::kSigUsr1, on_signal) == kOk, "signal(USR1, handler)");
    uint64_t a = user::uptime_ns(), b = a * 3 + 7;
    check(sys::kill(me, proto::kSigUsr1) == kOk, "kill(self, USR1) returns 0");
    check(g_got == proto::kSigUsr1 && g_count == 1, "the handler ran with the signal number");
    check(b == a * 3 + 7, "the interrupted code's values are intact");

    // Dispositions.
    check(sys::signal(proto::kSigKill, on_signal) == kEInval, "SIGKILL cannot be caught");
    check(sys::signal(40, on_signal) == kEInval, "no signal 40");
    check(sys::kill(me, 40) == kEInval, "kill with signal 40: EINVAL");
    check(sys::kill(30000, proto::kSigTerm) == kESrch, "kill of no such pid: ESRCH");
    check(sys::kill(me, 0) == kOk, "kill(self, 0) checks only");
    check(sys::signal(proto::kSigUsr2, sys::kSigIgnore) == kOk, "signal(USR2, SIG_IGN)");
    check(sys::kill(me, proto::kSigUsr2) == kOk, "an ignored signal does nothing");
    sys::SigHandler old = nullptr;
    sys::signal(proto::kSigUsr2, sys::kSigDefault, &old);
    check(old == sys::kSigIgnore, "signal returns the previous disposition");
    check(sys::kill(me, proto::kSigChld) == kOk, "SIGCHLD is ignored by default");

    // Default actions in a child: terminate, and wait says by which signal.
    int32_t pid = child([] { return sys::sleep_ns(10000 * kMs) == kOk ? 0 : 1; });
    sys::sleep_ns(100 * kMs);
    check(sys::kill(pid, proto::kSigTerm) == kOk, "kill(child, TERM)");
    check(wait_for(pid, kExitKilled, proto::kSigTerm), "wait: killed by signal 15");

    // A handler interrupts the child's sleep in PM: the sleep returns EINTR at once.
    check(sys::signal(proto::kSigInt, on_signal) == kOk, "signal(INT, handler)");
    g_got = 0;
    uint64_t t0 = user::uptime_ns();
    pid = child([] {
        int32_t r = sys::sleep_ns(10000 * kMs);
        return r == kEIntr && g_got == proto::kSigInt ? 0 : 20 + (r == kOk);
    });
    sys::sleep_ns(300 * kMs);
    check(sys::kill(pid, proto::kSigInt) == kOk, "kill(child, INT)");
    check(wait_for(pid, kExitNormal, 0), "the child's handler ran and its sleep said EINTR");
    check(user::uptime_ns() - t0 < 5000 * kMs, "well before the sleep's end");

    // A handler in a child that computes (runnable, not in IPC); the handler is inherited.
    g_got = 0;
    pid = child([] {
        while (g_got != proto::kSigUsr1) {
        }
        return 4;
    });
    sys::sleep_ns(100 * kMs);
    check(sys::kill(pid, proto::kSigUsr1) == kOk, "kill(busy child, USR1)");
    check(wait_for(pid, kExitNormal, 4), "the busy child's handler ran");

    // SIGKILL ends a child that catches everything else. The child says with USR1 when
    // its handlers are in place (a fixed sleep here lost that race on a loaded host).
    g_parent = me;
    g_got = 0;
    pid = child([] {
        for (int sig = 1; sig < proto::kNrSignals; ++sig)
            if (sig != proto::kSigKill) sys::signal(sig, on_signal);
        sys::kill(g_parent, proto::kSigUsr1);
        for (;;) sys::sleep_ns(1000 * kMs);
        return 0;
    });
    for (uint64_t t = user::uptime_ns(); g_got != proto::kSigUsr1;) {
        if (user::uptime_ns() - t > 30000 * kMs) break;
        sys::sleep_ns(10 * kMs);
    }
    check(g_got == proto::kSigUsr1, "the child caught everything but KILL");
    sys::kill(pid, proto::kSigTerm);  // caught
    check(sys::kill(pid, proto::kSigKill) == kOk, "kill(child, KILL)");
    check(wait_for(pid, kExitKilled, proto::kSigKill), "wait: killed by signal 9");

    // SIGCHLD reaches the parent's handler when a child ends.
    check(sys::signal(proto::kSigChld, on_chld) == kOk, "signal(CHLD, handler)");
    pid = child([] { return 3; });
    check(wait_for(pid, kExitNormal, 3), "the child exits 3");
    check(g_chld == 1, "SIGCHLD's handler ran once");
    sys::signal(proto::kSigChld, sys::kSigDefault);

    return tally::finish();
}
