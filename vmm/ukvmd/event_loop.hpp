// ukvmd's single-threaded epoll loop: sockets, guest pidfds and a periodic tick all
// dispatch from here, so daemon state needs no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "vmm/kvm.hpp"

namespace ukvm::ukvmd {

class EventLoop {
public:
    using Handler = std::function<void(std::uint32_t events)>;
    using Token = std::uint64_t;

    EventLoop();

    // Watches fd (owned by the caller) until remove(); returns the token for remove/modify.
    Token add(int fd, std::uint32_t events, Handler handler);
    void modify(Token token, std::uint32_t events);
    // Safe from inside a handler, including the handler being removed.
    void remove(Token token);

    // Runs `tick` about every `period` (console tailing, idle checks).
    void set_tick(std::chrono::milliseconds period, std::function<void()> tick);

    // Runs until stop(); exceptions from handlers propagate to the caller.
    void run();
    void stop() { stopped_ = true; }

private:
    struct Watch {
        int fd;
        std::shared_ptr<Handler> handler;
    };
    Fd epoll_;
    Fd timer_;
    std::function<void()> tick_;
    // Tokens are never reused, so an event for a removed watch whose fd number was
    // recycled within the same epoll_wait batch cannot reach the new owner.
    std::unordered_map<Token, Watch> watches_;
    Token next_token_ = 1;
    bool stopped_ = false;
};

}  // namespace ukvm::ukvmd
