// Guest console output to its configured sink and to the control socket's attached
// consoles: what `ukvm run --api-socket` puts between the UART/hypercall and the output.
#pragma once

#include <span>

#include "vmm/console.hpp"
#include "vmm/control/control_server.hpp"

namespace ukvm::control {

class ConsoleTee : public ConsoleSink {
public:
    ConsoleTee(ConsoleSink& inner, ControlServer& server) : inner_(inner), server_(server) {}
    void write(std::span<const std::uint8_t> bytes) override {
        inner_.write(bytes);
        server_.console_output(bytes);
    }

private:
    ConsoleSink& inner_;
    ControlServer& server_;
};

}  // namespace ukvm::control
