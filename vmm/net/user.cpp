#include "vmm/net/backend.hpp"

namespace ukvm {
std::unique_ptr<NetBackend> open_user_backend(const NetConfig&, const std::string& key) {
    throw NetError(key + ".backend: the user backend is not built yet");
}
}  // namespace ukvm
