/* SPDX-License-Identifier: MIT */
/*
 * init.c - the preload library's one constructor: what it sets up at
 * load, in a defined order (shim.h). The socket calls' own state (the
 * whole configuration with its port bitmaps, the policy, the registry)
 * is built once, at the first call that needs it (shim.c): a program
 * that never binds never faults those pages in.
 */
#include "real.h"
#include "shim.h"

/* glibc passes argc and argv to the constructors of a preloaded library. */
__attribute__((constructor)) static void ps_shim_load(int argc, char **argv)
{
	ps_real_resolve();
	ps_syscall_init();
	ps_exec_init(argc, argv);
}
