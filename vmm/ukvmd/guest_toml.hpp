// GuestConfig -> guest.toml text that load_config() reads back to the same config: how
// ukvmd hands a domain definition to the `ukvm run` process it starts.
#pragma once

#include <string>

#include "vmm/config.hpp"

namespace ukvm::ukvmd {

std::string to_guest_toml(const GuestConfig& config);

}  // namespace ukvm::ukvmd
