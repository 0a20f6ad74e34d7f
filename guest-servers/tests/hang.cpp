// hang: a service that answers RS's heartbeat a given number of times (its argument,
// default 1) and then hangs: blocked for good, answering nothing. RS must notice, kill it
// and start it again (configs: rs's arguments name it as an extra service).
#include "sys.hpp"

using namespace ukvm::kernel;

int main(const char* args) {
    int64_t answers = 1;
    if (*args) sys::parse_int(args, &answers);
    Message m{};
    while (answers > 0) {
        if (user::receive(kAny, &m) != kOk) continue;
        if (m.m_type == kNotifyMessage && m.m_source == user::parent()) {
            user::notify(m.m_source);
            --answers;
        }
    }
    user::print("hang: hanging now\n");
    for (;;) user::receive(kClock, &m);  // no alarm: never returns
}
