// sh: a minimal shell on the console. Built-in commands: help, echo, ps, uptime, kill,
// poweroff, reboot, exit; any other word runs the boot program of that name through PM and waits
// for it, as TTY's foreground process: ^C sends it SIGINT. The shell itself catches
// SIGINT (^C at the prompt or in a built-in: a new prompt).
#include "sh_files.hpp"
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

namespace {

constexpr const char* kPrompt = "minix# ";
constexpr int kMaxArgs = 16;
int32_t g_pid = 0;

void on_interrupt(int) {
    // Nothing to do: the interrupted read or sleep returns kEIntr, and the shell goes back
    // to its prompt.
}

void cmd_help(int, char**) {
    print(
        "built-in commands:\n"
        "  help            this list\n"
        "  echo WORDS...   print the words (> FILE: into a file, >> FILE: append)\n"
        "  ps              list the processes\n"
        "  uptime          time since boot\n"
        "  kill [-SIG] PID send a signal (default TERM; -9 or -KILL cannot be caught;\n"
        "                  RS restarts a killed system service)\n"
        "  sleep MS        wait that many milliseconds\n"
        "  poweroff        end the machine (status 0)\n"
        "  reboot          restart the machine (ukvm exits 4; ukvmd's <on_reboot>)\n"
        "files (paths from /): ls [-l] [PATH...], cat FILE..., mkdir DIR..., rmdir DIR...,\n"
        "  rm FILE..., mv FROM TO, cp FROM TO, df, sync\n"
        "  exit [STATUS]   end this shell (init starts another)\n"
        "anything else runs the boot program of that name: PROGRAM [ARGS...]\n"
        "  (a final & runs it in the background)\n"
        "network: ifconfig [en0 A.B.C.D/N [GW]], ping HOST [N], echod [PORT] [udp],\n"
        "  echoc HOST PORT [BYTES], httpd [PORT], nettest (loopback self-test)\n");
}

void cmd_echo(int argc, char** argv) {
    char line[256];
    size_t n = 0;
    line[0] = '\0';
    // "> FILE", ">FILE", ">> FILE", ">>FILE": the line goes into FILE.
    const char* file = nullptr;
    bool append = false;
    for (int i = 1; i < argc; ++i) {
        if (argv[i][0] == '>') {
            append = argv[i][1] == '>';
            file = argv[i] + (append ? 2 : 1);
            if (!*file) file = i + 1 < argc ? argv[++i] : nullptr;
            if (!file) return print("echo: > needs a file name\n");
            continue;
        }
        n += user::format(line + n, sizeof line - n, n ? " %s" : "%s", argv[i]);
    }
    if (!file) return print("%s\n", line);
    user::format(line + n, sizeof line - n, "\n");
    sh_files::write_to(file, line, append);
}

const char* state_name(const ProcInfo& p) {
    if (p.state & 1) return "send";
    if (p.state & 2) return "recv";
    return "ready";
}

// What a process waits for, by name where the endpoint is known.
const char* partner(Endpoint e, const sys::ProcEntry* all, int n) {
    switch (e) {
        case kAny:
            return "any";
        case kClock:
            return "clock";
        case kSystem:
            return "system";
        case kHardware:
            return "hardware";
        case kVmm:
            return "vmm";
    }
    for (int i = 0; i < n; ++i)
        if (all[i].info.endpoint == e) return all[i].info.name;
    return "?";
}

void cmd_ps(int, char**) {
    sys::ProcEntry all[kNrProcs];
    int n = 0;
    for (int32_t slot = 0; n < kNrProcs && sys::next_proc(&slot, &all[n]);) ++n;
    print("  PID  PPID  ENDPOINT  SLOT GEN CLASS  PRI STATE      NAME\n");
    for (int i = 0; i < n; ++i) {
        const ProcInfo& p = all[i].info;
        char state[24];
        if (p.state)
            user::format(state, sizeof state, "%s %s", state_name(p),
                         partner(p.blocked_on, all, n));
        else
            user::format(state, sizeof state, "%s", state_name(p));
        print("%5d %5d %9d %5d %3d %-6s %3u %-10s %s\n", all[i].pid, all[i].parent_pid, p.endpoint,
              endpoint_slot(p.endpoint), p.endpoint / kGenerationSize,
              p.cls == 2 ? "user" : "system", p.priority, state, p.name);
    }
}

void cmd_uptime(int, char**) {
    uint64_t ns = user::uptime_ns();
    uint64_t s = ns / 1000000000;
    print("up %lu:%02lu:%02lu.%03lu\n", s / 3600, s / 60 % 60, s % 60, ns / 1000000 % 1000);
}

void cmd_kill(int argc, char** argv) {
    int64_t pid;
    int sig = proto::kSigTerm;
    if (argc == 3 && argv[1][0] == '-') sig = sys::signal_number(argv[1] + 1);
    if (argc < 2 || argc > 3 || sig == 0 || !sys::parse_int(argv[argc - 1], &pid) || pid <= 0) {
        print("usage: kill [-SIGNAL] PID   (SIGNAL: a number or HUP INT QUIT KILL USR1 ...)\n");
        return;
    }
    int32_t r = sys::kill(static_cast<int32_t>(pid), sig);
    if (r < 0) print("kill: %ld: error %d\n", pid, r);
}

void cmd_sleep(int argc, char** argv) {
    int64_t ms;
    if (argc != 2 || !sys::parse_int(argv[1], &ms) || ms < 0) {
        print("usage: sleep MILLISECONDS\n");
        return;
    }
    sys::sleep_ns(static_cast<uint64_t>(ms) * 1000000);  // kEIntr after ^C
}

void cmd_poweroff(int, char**) {
    print("powering off\n");
    sys::poweroff(0);
}

void cmd_reboot(int, char**) {
    print("rebooting\n");
    sys::reboot();
}

// A final "&" runs the program in the background: no wait (for servers such as httpd).
void run(int argc, char** argv) {
    bool background = argc > 1 && strcmp(argv[argc - 1], "&") == 0;
    if (background) argv[--argc] = nullptr;
    char args[kSpawnArgsMax];
    size_t n = 0;
    args[0] = '\0';
    for (int i = 1; i < argc; ++i)
        n += user::format(args + n, sizeof args - n, i > 1 ? " %s" : "%s", argv[i]);
    // ^C must reach the job from its first instruction: until we know its pid, all our
    // children are TTY's foreground (background jobs too, for that moment).
    if (!background) sys::tty_foreground(-g_pid);
    int32_t pid = sys::spawn(argv[0], args);
    if (pid < 0 && !background) sys::tty_foreground(g_pid);
    if (pid == kESrch) {
        print("%s: command not found (try help)\n", argv[0]);
        return;
    }
    if (pid < 0) {
        print("%s: cannot start (%d)\n", argv[0], pid);
        return;
    }
    if (background) {
        print("[%d] %s\n", pid, argv[0]);
        return;
    }
    sys::tty_foreground(pid);
    sys::WaitStatus st{};
    int32_t r = sys::wait(pid, &st);
    sys::tty_foreground(g_pid);
    if (r < 0) return;
    if (st.reason == kExitFault)
        print("[%d] %s: killed by a fault (vector %lu)\n", pid, argv[0], st.detail);
    else if (st.reason == kExitKilled)
        print("[%d] %s: killed by signal %lu (%s)\n", pid, argv[0], st.detail,
              sys::signal_name(static_cast<int>(st.detail)));
    else if (st.detail != 0)
        print("[%d] %s: exit status %lu\n", pid, argv[0], st.detail);
}

struct Builtin {
    const char* name;
    void (*run)(int argc, char** argv);
};
constexpr Builtin kBuiltins[] = {
    {"help", cmd_help},     {"echo", cmd_echo},         {"ps", cmd_ps},
    {"uptime", cmd_uptime}, {"kill", cmd_kill},         {"poweroff", cmd_poweroff},
    {"reboot", cmd_reboot}, {"sleep", cmd_sleep},       {"ls", sh_files::ls},
    {"cat", sh_files::cat}, {"mkdir", sh_files::mkdir}, {"rmdir", sh_files::rmdir},
    {"rm", sh_files::rm},   {"mv", sh_files::mv},       {"cp", sh_files::cp},
    {"df", sh_files::df},   {"sync", sh_files::sync},
};

enum class Read { kLine, kInterrupted, kGone };

// Reads one line (without the newline); kGone when the console is gone for good. While
// TTY is being restarted (by RS) the read fails: try again for a few seconds.
Read read_line(char* line, size_t size) {
    size_t len = 0;
    for (int failures = 0;;) {
        char chunk[proto::kTtyDataMax];
        int32_t n = sys::read_line(chunk, sizeof chunk);
        if (n == kEIntr) return Read::kInterrupted;
        if (n < 0) {
            if (++failures == 50) return Read::kGone;
            if (failures == 1) sys::tty_foreground(g_pid);  // a restarted TTY knows nothing
            sys::sleep_ns(100000000);
            continue;
        }
        for (int32_t i = 0; i < n; ++i) {
            if (chunk[i] == '\n') {
                line[len] = '\0';
                return Read::kLine;
            }
            if (len + 1 < size) line[len++] = chunk[i];
        }
    }
}

}  // namespace

int main(const char*) {
    g_pid = sys::getpid();
    sys::signal(proto::kSigInt, on_interrupt);
    sys::tty_foreground(g_pid);
    print("sh: pid %d; type help for the commands\n", g_pid);
    char line[256];
    for (;;) {
        print("%s", kPrompt);
        Read got = read_line(line, sizeof line);
        if (got == Read::kGone) {
            print("sh: no console\n");
            return 1;
        }
        if (got == Read::kInterrupted) continue;
        char* argv[kMaxArgs + 1];
        int argc = 0;
        for (char* p = line; *p && argc < kMaxArgs;) {
            while (*p == ' ' || *p == '\t') *p++ = '\0';
            if (!*p) break;
            argv[argc++] = p;
            while (*p && *p != ' ' && *p != '\t') ++p;
        }
        argv[argc] = nullptr;
        if (argc == 0) continue;
        if (strcmp(argv[0], "exit") == 0) {
            int64_t status = 0;
            if (argc > 1) sys::parse_int(argv[1], &status);
            return static_cast<int>(status);
        }
        bool builtin = false;
        for (const Builtin& b : kBuiltins) {
            if (strcmp(argv[0], b.name) != 0) continue;
            b.run(argc, argv);
            builtin = true;
            break;
        }
        if (!builtin) run(argc, argv);
    }
}
