// The boot-image policy: privileges per program name, as data.
#pragma once

#include "priv.hpp"

namespace kernel::table {

// The privileges of a process running the program called name (a module's file name
// without directories); programs not in the table are ordinary users.
Priv privileges_for(const char* name);

}  // namespace kernel::table
