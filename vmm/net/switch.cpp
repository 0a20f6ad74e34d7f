#include "vmm/net/backend.hpp"

namespace ukvm {
std::unique_ptr<NetBackend> open_switch_backend(const NetConfig&, const std::string& key) {
    throw NetError(key + ".backend: the switch backend is not built yet");
}
}  // namespace ukvm
