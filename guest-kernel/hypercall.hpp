// The hypercall doorbell to ukvm (virtio/include/ukvm/hypercall.h): one `out` per call.
#pragma once

#include <ukvm/hypercall.h>

namespace kernel::hypercall {

// True when a ukvm VMM answered the version probe (decided once at boot).
bool available();
bool probe();

// Issues one call; msg must be in kernel memory (identity-mapped: virtual == physical).
void call(ukvm::hc::Message& msg);

}  // namespace kernel::hypercall
