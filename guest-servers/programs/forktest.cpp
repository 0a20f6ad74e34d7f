// forktest: fork and exec through PM. The child gets 0 and its own pid, a copy of the
// parent's memory (its writes stay its own) and exits with a status the parent collects
// with wait; a second child execs this program again ("exit 42": it just exits with 42)
// and keeps its pid. Prints "N passed, M failed"; exits with M.
#include "sys.hpp"
#include "tally.hpp"

using namespace ukvm::kernel;
using tally::check;
using user::print;

namespace {

volatile int g_value = 1;
char* g_heap = nullptr;

}  // namespace

int main(const char* args) {
    int64_t status;
    if (strncmp(args, "exit ", 5) == 0 && sys::parse_int(args + 5, &status)) {
        print("forktest: exec'd as pid %d, exiting with %ld\n", sys::getpid(), status);
        return static_cast<int>(status);
    }
    int32_t me = sys::getpid();
    g_heap = static_cast<char*>(malloc(100));
    strncpy(g_heap, "parent", 100);
    uint64_t t0 = user::uptime_ns();
    int32_t pid = sys::fork();
    if (pid == 0) {
        // The child: checks are reported through its exit status (bit per failure).
        int bad = 0;
        if (sys::getpid() == me || sys::getpid() <= 0) bad |= 1;
        if (g_value != 1 || strcmp(g_heap, "parent") != 0) bad |= 2;
        g_value = 2;
        strncpy(g_heap, "child", 100);
        print("forktest: child pid %d, parent %d\n", sys::getpid(), me);
        return 40 + bad;
    }
    uint64_t t1 = user::uptime_ns();
    check(pid > 0 && pid != me, "the parent gets the child's pid");
    sys::WaitStatus st{};
    check(sys::wait(pid, &st) == pid, "wait returns the child");
    check(st.reason == kExitNormal && st.detail == 40, "the child saw a copy and its own pid");
    check(g_value == 1 && strcmp(g_heap, "parent") == 0, "the child's writes stayed its own");
    check(sys::wait(-1, &st) == proto::kEChild, "no more children");

    int32_t execd = sys::fork();
    if (execd == 0) {
        sys::exec("forktest", "exit 42");
        return 99;  // exec failed
    }
    check(sys::wait(execd, &st) == execd && st.reason == kExitNormal && st.detail == 42,
          "a forked child execs another program, keeping its pid");
    check(sys::exec("nosuch", "") == kESrch, "exec of an unknown program fails in the caller");
    print("forktest: fork took %lu us\n", (t1 - t0) / 1000);
    return tally::finish();
}
