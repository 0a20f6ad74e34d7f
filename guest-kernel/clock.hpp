// The CLOCK task: uptime from the TSC (calibrated against the LAPIC timer at boot) and
// one alarm per process, delivered as a notification from kClock.
#pragma once

#include <stdint.h>

#include "proc.hpp"

namespace kernel::clock {

void init();
uint64_t uptime_ns();
uint64_t tsc_hz();
void set_alarm(Proc* p, uint64_t delay_ns);  // 0 cancels
void cancel_alarm(Proc* p);
uint64_t next_alarm_ns();  // the earliest pending alarm's uptime, 0 if none
void expire_alarms();      // notifies every process whose alarm is due

}  // namespace kernel::clock
