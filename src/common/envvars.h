/* SPDX-License-Identifier: MIT */
/*
 * envvars.h - the one list of portshim's environment variables.
 *
 * PS_ENV_VARIABLES(X) calls X(name, loader, start) for every PORTSHIM_*
 * variable, in the order of the reference's table:
 *   name    the variable;
 *   loader  config.c's parser of it, or NULL for a variable that the
 *           configuration does not hold (handed between portshim's own
 *           processes: the registry descriptor, the job, the cookie, the
 *           file of warnings; or read by `run` alone: the library);
 *   start   read by ps_config_load_start, before the first socket call.
 * config.c parses the variables that have a loader; the shim's exec
 * wrappers (exec.c) keep every one of them across an exec whose
 * environment dropped it. PORTSHIM_PORTS comes first (exec.c relies on
 * it: without it a program escapes the shim).
 */
#ifndef PS_ENVVARS_H
#define PS_ENVVARS_H

#define PS_ENV_VARIABLES(X)                                  \
	X("PORTSHIM_PORTS", load_ports, true)                \
	X("PORTSHIM_GROUP", load_group, false)               \
	X("PORTSHIM_GROUP_FROM", load_group_from, false)     \
	X("PORTSHIM_MAP_FILE", load_map_file, false)         \
	X("PORTSHIM_RANGE", load_range, false)               \
	X("PORTSHIM_REGISTRY", load_registry, true)          \
	X("PORTSHIM_UNMAPPED", load_unmapped, false)         \
	X("PORTSHIM_ON_ERROR", load_on_error, false)         \
	X("PORTSHIM_LOG", load_log, true)                    \
	X("PORTSHIM_LOG_FILE", load_log_file, true)          \
	X("PORTSHIM_BYPASS", load_bypass, true)              \
	X("PORTSHIM_KEEP_ENV", load_keep_env, true)          \
	X("PORTSHIM_GROUP_OWNER", load_group_owner, false)   \
	X("PORTSHIM_REPORT", load_report, false)             \
	X("PORTSHIM_LOCK_TIMEOUT", load_lock_timeout, false) \
	X("PORTSHIM_KEEPER", load_keeper, false)             \
	X("PORTSHIM_REGISTRY_FD", NULL, false)               \
	X("PORTSHIM_PER_JOB", NULL, false)                   \
	X("PORTSHIM_JOB", NULL, false)                       \
	X("PORTSHIM_SUPERVISED", NULL, false)                \
	X("PORTSHIM_WARNED", NULL, false)                    \
	X("PORTSHIM_LIBRARY", NULL, false)

#endif
