/* SPDX-License-Identifier: MIT */
/*
 * config.h - every PORTSHIM_* variable, parsed once into one struct.
 *
 * The library reads the environment once per process, at first use, with
 * secure_getenv (so setuid programs see nothing and the shim stays inert);
 * the CLI uses getenv. Both go through ps_config_load with a getter, so
 * tests can feed a table.
 *
 * Invalid values: each gives one line naming the variable and quoting the
 * bad text; the variable then takes its default (for PORTSHIM_PORTS the
 * default is "none": the shim is inert). `portshim run` refuses to start
 * on any error instead.
 */
#ifndef PS_CONFIG_H
/* PACKAGE_VERSION and friends come from the build: autoconfig.h is force-included
 * on every compile line (Makefile.am), before any system header. */
#define PS_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "portspec.h"
#include "proc.h"

#define PS_GROUP_MAX 63	     /* characters, without the NUL */
#define PS_GROUP_FROM_MAX 16 /* variables in PORTSHIM_GROUP_FROM */
#define PS_ENV_NAME_MAX 63

#define PS_RANGE_LO_DEFAULT 20000
#define PS_RANGE_HI_DEFAULT 32767

enum ps_unmapped {
	PS_UNMAPPED_DEFAULT = 0, /* refuse for lists, pass for "all" */
	PS_UNMAPPED_REFUSE,
	PS_UNMAPPED_PASS,
};

enum ps_on_error {
	PS_ON_ERROR_FAIL = 0,
	PS_ON_ERROR_PASS,
};

enum ps_bypass {
	PS_BYPASS_WARN = 0,
	PS_BYPASS_FAIL,
	PS_BYPASS_IGNORE,
	PS_BYPASS_SUPERVISE,
};

struct ps_config {
	bool enabled; /* PORTSHIM_PORTS set and valid */
	struct ps_portspec ports;
	char group[PS_GROUP_MAX + 1]; /* "" = not set */
	unsigned n_group_from;
	char group_from[PS_GROUP_FROM_MAX][PS_ENV_NAME_MAX + 1];
	char map_file[PATH_MAX]; /* "" = none */
	uint16_t range_lo, range_hi;
	char registry[PATH_MAX];   /* "" = default location */
	enum ps_unmapped unmapped; /* never PS_UNMAPPED_DEFAULT after load */
	enum ps_on_error on_error;
	enum ps_log_level log_level;
	char log_file[PATH_MAX]; /* "" = stderr */
	enum ps_bypass bypass;
	bool keep_env;
	/* PORTSHIM_GROUP_OWNER (set by `portshim run`): pid:start of the
	 * process whose life keeps the group's leases. pid 0 = none. */
	struct ps_ident owner;
	/* PORTSHIM_REPORT (set by `portshim run --report`): an absolute
	 * path; the ports bound and connected to are noted there. "" = no. */
	char report_file[PATH_MAX];
	/* PORTSHIM_KEEPER (set by `portshim run`): the group keeper's
	 * abstract socket, which publishes the mapping file for members
	 * that cannot write it. "" = none. */
	char keeper[48];
};

/* Returns the value of an environment variable, or NULL. */
typedef const char *(*ps_getenv_fn)(const char *name);

/* A ps_getenv_fn: secure_getenv, so that a set-id program reads none. */
const char *ps_env_secure(const char *name);

/* Called with each line of ps_config_load's errors (len bytes, no '\n'). */
typedef void (*ps_config_error_fn)(void *arg, const char *line, int len);

/* Calls fn for each non-empty line of errs, as ps_config_load wrote it. */
void ps_config_each_error(const char *errs, ps_config_error_fn fn, void *arg);

/*
 * Fills cfg from the variables that get returns. Returns the number of
 * invalid variables (0 = all good). For each, one line
 * "PORTSHIM_X: <what is wrong with 'text'>, <what is expected>\n" is
 * appended to err (NUL-terminated, truncated to errlen).
 */
int ps_config_load(struct ps_config *cfg, ps_getenv_fn get, char *err,
		   size_t errlen);

/*
 * What a process needs at its start, before any socket call: fills only
 * enabled (PORTSHIM_PORTS checked, not stored), registry, log_level,
 * log_file, bypass and keep_env, and leaves every other byte of cfg as
 * it was (a static cfg stays untouched zero pages: the preload's
 * constructor runs in every program). Errors are not reported: the
 * full load at the first socket call reports them.
 */
void ps_config_load_start(struct ps_config *cfg, ps_getenv_fn get);

/*
 * Checks a group name: 1..63 characters of [A-Za-z0-9._-]. Returns true
 * if valid.
 */
bool ps_group_valid(const char *name);

/*
 * Resolves PORTSHIM_GROUP_FROM: appends ".<value>" for each listed
 * variable that get returns non-empty (characters outside [A-Za-z0-9._-]
 * become '_'), to base, into out (PS_GROUP_MAX + 1 bytes). Returns 0, or
 * -ENAMETOOLONG if the result would exceed PS_GROUP_MAX.
 */
int ps_config_group_resolve(const struct ps_config *cfg, ps_getenv_fn get,
			    const char *base, char *out);

#endif
