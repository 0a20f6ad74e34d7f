#include "vmm/net/backend.hpp"

#include <fmt/format.h>

namespace ukvm {

std::unique_ptr<NetBackend> open_net_backend(const NetConfig& config, const std::string& key) {
    switch (config.backend) {
        case NetBackendKind::Tap:
            return open_tap_backend(config, key);
        case NetBackendKind::Switch:
            return open_switch_backend(config, key);
        case NetBackendKind::User:
            return open_user_backend(config, key);
    }
    throw NetError(key + ".backend: unknown backend");
}

std::string format_mac(const MacAddress& mac) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3],
                       mac[4], mac[5]);
}

}  // namespace ukvm
