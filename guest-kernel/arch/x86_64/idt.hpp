// The interrupt descriptor table: exception and interrupt stubs from entry.S.
#pragma once

namespace kernel::idt {

void init();

}  // namespace kernel::idt
