// Placeholder until the VMM core lands.
#include "vmm/machine.hpp"

namespace ukvm {
int run_guest(const GuestConfig&, const RunOptions&) { throw std::runtime_error("not implemented"); }
}  // namespace ukvm
