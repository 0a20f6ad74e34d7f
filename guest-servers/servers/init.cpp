// init: the root of user space, started by RS once the services are up. Keeps a shell
// running on the console: starts `sh` through PM and starts a new one when it exits.
#include "sys.hpp"

using namespace ukvm::kernel;
using user::print;

int main(const char*) {
    for (int failures = 0; failures < 3;) {
        int32_t pid = sys::spawn("sh", "");
        if (pid < 0) {
            print("init: cannot start sh (%d)\n", pid);
            ++failures;
            continue;
        }
        sys::WaitStatus st{};
        if (sys::wait(pid, &st) < 0) {
            print("init: lost sh (pid %d)\n", pid);
            return 1;
        }
        print("init: sh (pid %d) ended (reason %lu, %lu); starting another\n", pid, st.reason,
              st.detail);
    }
    print("init: giving up\n");
    return 1;
}
