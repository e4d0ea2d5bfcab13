/* SPDX-License-Identifier: MIT */
/*
 * report.h - which ports a command uses (`portshim run --report`).
 *
 * Every process of a group whose PORTSHIM_REPORT names a file appends one
 * line to it the first time it binds or connects to a tagged port:
 *
 *     bind tcp 8080
 *     connect udp 5353
 *
 * (kind, protocol, virtual port). The file is opened for each line
 * (O_APPEND, one write(2): lines of many processes never interleave) and
 * never kept open, since a host program may close every descriptor it did
 * not open. `portshim run` reads it back when CMD ends (ps_report_read)
 * and prints the ports, so a user can write `--ports`.
 */
#ifndef PS_REPORT_H
#define PS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "registry.h"

enum ps_report_kind {
	PS_REPORT_BIND = 0,
	PS_REPORT_CONNECT,
};

/*
 * Notes that this process binds (or connects to) vport of proto, once
 * per process and (kind, proto, vport), in cfg->report_file. Does nothing
 * without one. Failures are ignored (a report is an aid, never a reason
 * for a call to fail). No allocation, no lock; errno preserved. Safe in a
 * signal handler and after fork.
 */
void ps_report_note(const struct ps_config *cfg, enum ps_report_kind kind,
		    enum ps_proto proto, uint16_t vport);

/* What a report says about one (protocol, port). */
#define PS_REPORT_F_BOUND 0x1u
#define PS_REPORT_F_CONNECTED 0x2u

/*
 * Parses a report's text (len bytes) into flags[proto][vport]
 * (PS_REPORT_F_*), which the caller zeroes. Lines that do not parse are
 * skipped (a writer that was killed half way). Returns the number of
 * lines used.
 */
size_t ps_report_parse(const char *text, size_t len,
		       uint8_t flags[PS_NPROTO][65536]);

#endif
