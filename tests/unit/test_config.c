/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - reading the PORTSHIM_* variables into struct ps_config.
 *
 * The environment is a table that the getter below reads, so each test
 * says exactly which variables are set. Every invalid value must give one
 * line naming the variable and quoting the value, count once, and leave
 * the whole configuration as it would be without that variable.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "envvars.h"
#include "handoff.h"
#include "supcall.h"

#define ENV_MAX 32

/* The fake environment: name/value pairs, read by env_get. */
static const char *env[ENV_MAX][2];
static size_t env_n;

static const char *env_get(const char *name)
{
	size_t i;

	for (i = 0; i < env_n; i++)
		if (strcmp(env[i][0], name) == 0)
			return env[i][1];
	return NULL;
}

static void env_clear(void)
{
	env_n = 0;
}

static void env_set(const char *name, const char *value)
{
	assert_true(env_n < ENV_MAX);
	env[env_n][0] = name;
	env[env_n][1] = value;
	env_n++;
}

/* Configurations are ~40 KiB: keep them off cmocka's stack. */
static struct ps_config cfg, defaults;
static char err[8192];

static const char *const all_vars[] = {
	"PORTSHIM_PORTS",	"PORTSHIM_GROUP",    "PORTSHIM_GROUP_FROM",
	"PORTSHIM_MAP_FILE",	"PORTSHIM_RANGE",    "PORTSHIM_REGISTRY",
	"PORTSHIM_UNMAPPED",	"PORTSHIM_ON_ERROR", "PORTSHIM_LOG",
	"PORTSHIM_LOG_FILE",	"PORTSHIM_BYPASS",   "PORTSHIM_KEEP_ENV",
	"PORTSHIM_GROUP_OWNER", "PORTSHIM_REPORT",
};
#define N_VARS (sizeof(all_vars) / sizeof(all_vars[0]))

/* Values longer than anything accepted; filled in main(). */
static char long_path[PATH_MAX + 16];
static char long_group[PS_GROUP_MAX + 2];
static char long_name[PS_ENV_NAME_MAX + 2];
static char hostile[600];

/* The first 48 characters of a long value, as error messages show them. */
#define P8 "pppppppp"
#define P48 P8 P8 P8 P8 P8 P8
#define G8 "gggggggg"
#define G48 G8 G8 G8 G8 G8 G8

static int setup_defaults(void **state)
{
	int rc;

	env_clear();
	rc = ps_config_load(&defaults, env_get, err, sizeof(err));
	assert_int_equal(rc, 0);
	return 0;
}

static void test_config_defaults(void **state)
{
	int rc;

	env_clear();
	memset(&cfg, 0x5a, sizeof(cfg));
	memset(err, 'x', sizeof(err));
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");

	assert_false(cfg.enabled);
	assert_false(cfg.ports.all);
	assert_false(cfg.ports.any);
	assert_false(ps_portspec_maybe(&cfg.ports, 8080));
	assert_string_equal(cfg.group, "");
	assert_int_equal(cfg.n_group_from, 0);
	assert_string_equal(cfg.map_file, "");
	assert_int_equal(cfg.range_lo, PS_RANGE_LO_DEFAULT);
	assert_int_equal(cfg.range_hi, PS_RANGE_HI_DEFAULT);
	assert_int_equal(PS_RANGE_LO_DEFAULT, 20000);
	assert_int_equal(PS_RANGE_HI_DEFAULT, 32767);
	assert_string_equal(cfg.registry, "");
	assert_int_equal(cfg.unmapped, PS_UNMAPPED_REFUSE);
	assert_int_equal(cfg.on_error, PS_ON_ERROR_FAIL);
	assert_int_equal(cfg.log_level, PS_LOG_ERROR);
	assert_string_equal(cfg.log_file, "");
	assert_int_equal(cfg.bypass, PS_BYPASS_WARN);
	assert_false(cfg.keep_env);
	assert_int_equal(cfg.owner.pid, 0);
	assert_int_equal(cfg.owner.start, 0);
}

/* An empty value is the same as no value, for every variable. */
static void test_config_empty_is_unset(void **state)
{
	size_t i;
	int rc;

	env_clear();
	for (i = 0; i < N_VARS; i++)
		env_set(all_vars[i], "");
	memset(&cfg, 0x5a, sizeof(cfg));
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");
	assert_memory_equal(&cfg, &defaults, sizeof(cfg));
}

static void test_config_valid(void **state)
{
	int rc;

	env_clear();
	env_set("PORTSHIM_PORTS", "8080,9000-9010,udp:5353,tcp:6379");
	env_set("PORTSHIM_GROUP", "run-1.a_B");
	env_set("PORTSHIM_GROUP_FROM", "PYTEST_XDIST_WORKER, PARALLEL_SEQ,_x9");
	env_set("PORTSHIM_MAP_FILE", "rel/dir/g.map");
	env_set("PORTSHIM_RANGE", "1-1023");
	env_set("PORTSHIM_REGISTRY", "/tmp/some where/registry");
	env_set("PORTSHIM_UNMAPPED", "pass");
	env_set("PORTSHIM_ON_ERROR", "pass");
	env_set("PORTSHIM_LOG", "debug");
	env_set("PORTSHIM_LOG_FILE", "/tmp/ps.log");
	env_set("PORTSHIM_BYPASS", "supervise");
	env_set("PORTSHIM_KEEP_ENV", "1");
	env_set("PORTSHIM_GROUP_OWNER", "4242:987654321");
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");

	assert_true(cfg.enabled);
	assert_false(cfg.ports.all);
	assert_true(ps_portspec_has(&cfg.ports, PS_TCP, 8080));
	assert_true(ps_portspec_has(&cfg.ports, PS_UDP, 9010));
	assert_true(ps_portspec_has(&cfg.ports, PS_UDP, 5353));
	assert_false(ps_portspec_has(&cfg.ports, PS_TCP, 5353));
	assert_true(ps_portspec_has(&cfg.ports, PS_TCP, 6379));
	assert_false(ps_portspec_has(&cfg.ports, PS_UDP, 6379));
	assert_false(ps_portspec_maybe(&cfg.ports, 9011));
	assert_string_equal(cfg.group, "run-1.a_B");
	assert_int_equal(cfg.n_group_from, 3);
	assert_string_equal(cfg.group_from[0], "PYTEST_XDIST_WORKER");
	assert_string_equal(cfg.group_from[1], "PARALLEL_SEQ");
	assert_string_equal(cfg.group_from[2], "_x9");
	assert_string_equal(cfg.map_file, "rel/dir/g.map");
	assert_int_equal(cfg.range_lo, 1);
	assert_int_equal(cfg.range_hi, 1023);
	assert_string_equal(cfg.registry, "/tmp/some where/registry");
	assert_int_equal(cfg.unmapped, PS_UNMAPPED_PASS);
	assert_int_equal(cfg.on_error, PS_ON_ERROR_PASS);
	assert_int_equal(cfg.log_level, PS_LOG_DEBUG);
	assert_string_equal(cfg.log_file, "/tmp/ps.log");
	assert_int_equal(cfg.bypass, PS_BYPASS_SUPERVISE);
	assert_true(cfg.keep_env);
	assert_int_equal(cfg.owner.pid, 4242);
	assert_int_equal(cfg.owner.start, 987654321);
}

/* Values at the edges of what is accepted. */
static void test_config_valid_edges(void **state)
{
	char group[PS_GROUP_MAX + 1], path[PATH_MAX];
	int rc;

	memset(group, 'g', PS_GROUP_MAX);
	group[PS_GROUP_MAX] = '\0';
	memset(path, 'p', PATH_MAX - 1);
	path[0] = '/'; /* the registry's path must be absolute */
	path[PATH_MAX - 1] = '\0';

	env_clear();
	env_set("PORTSHIM_GROUP", group);
	env_set("PORTSHIM_GROUP_FROM", "A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P");
	env_set("PORTSHIM_RANGE", "65535-65535");
	env_set("PORTSHIM_MAP_FILE", path);
	env_set("PORTSHIM_REGISTRY", path);
	env_set("PORTSHIM_LOG_FILE", path);
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(cfg.group, group);
	assert_int_equal(cfg.n_group_from, PS_GROUP_FROM_MAX);
	assert_string_equal(cfg.group_from[15], "P");
	assert_int_equal(cfg.range_lo, 65535);
	assert_int_equal(cfg.range_hi, 65535);
	assert_string_equal(cfg.map_file, path);
	assert_string_equal(cfg.registry, path);
	assert_string_equal(cfg.log_file, path);
}

/* Every spelling of every keyword variable. */
static void test_config_keywords(void **state)
{
	static const struct {
		const char *var, *value;
		int expect;
	} cases[] = {
		{ "PORTSHIM_UNMAPPED", "refuse", PS_UNMAPPED_REFUSE },
		{ "PORTSHIM_UNMAPPED", "pass", PS_UNMAPPED_PASS },
		{ "PORTSHIM_ON_ERROR", "fail", PS_ON_ERROR_FAIL },
		{ "PORTSHIM_ON_ERROR", "pass", PS_ON_ERROR_PASS },
		{ "PORTSHIM_LOG", "none", PS_LOG_NONE },
		{ "PORTSHIM_LOG", "error", PS_LOG_ERROR },
		{ "PORTSHIM_LOG", "info", PS_LOG_INFO },
		{ "PORTSHIM_LOG", "debug", PS_LOG_DEBUG },
		{ "PORTSHIM_BYPASS", "warn", PS_BYPASS_WARN },
		{ "PORTSHIM_BYPASS", "fail", PS_BYPASS_FAIL },
		{ "PORTSHIM_BYPASS", "ignore", PS_BYPASS_IGNORE },
		{ "PORTSHIM_BYPASS", "supervise", PS_BYPASS_SUPERVISE },
		{ "PORTSHIM_KEEP_ENV", "0", 0 },
		{ "PORTSHIM_KEEP_ENV", "1", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc, got;

		env_clear();
		env_set(cases[i].var, cases[i].value);
		rc = ps_config_load(&cfg, env_get, err, sizeof(err));
		assert_int_equal(rc, 0);
		if (strcmp(cases[i].var, "PORTSHIM_UNMAPPED") == 0)
			got = cfg.unmapped;
		else if (strcmp(cases[i].var, "PORTSHIM_ON_ERROR") == 0)
			got = cfg.on_error;
		else if (strcmp(cases[i].var, "PORTSHIM_LOG") == 0)
			got = cfg.log_level;
		else if (strcmp(cases[i].var, "PORTSHIM_BYPASS") == 0)
			got = cfg.bypass;
		else
			got = cfg.keep_env;
		assert_int_equal(got, cases[i].expect);
	}
}

struct bad_case {
	const char *var, *value;
	const char *quoted; /* must appear in the line, after "VAR: " */
};

static const struct bad_case bad_cases[] = {
	{ "PORTSHIM_PORTS", "70000", "'70000'" },
	{ "PORTSHIM_PORTS", "8080,70000", "'70000'" },
	{ "PORTSHIM_PORTS", "0", "'0'" },
	{ "PORTSHIM_PORTS", "8080,,9000", "'8080,,9000'" },
	{ "PORTSHIM_PORTS", "9010-9000", "'9010-9000'" },
	{ "PORTSHIM_PORTS", "sctp:80", "'sctp'" },
	{ "PORTSHIM_PORTS", "all,8080", "'all,8080'" },
	{ "PORTSHIM_PORTS", " ", "' '" },
	{ "PORTSHIM_PORTS", "http", "'http'" },
	{ "PORTSHIM_PORTS", "+80", "'+80'" },
	{ "PORTSHIM_GROUP", "has space", "'has space'" },
	{ "PORTSHIM_GROUP", "a/b", "'a/b'" },
	{ "PORTSHIM_GROUP", "../x", "'../x'" },
	{ "PORTSHIM_GROUP", "g\n1", "'g?1'" },
	{ "PORTSHIM_GROUP", "gr\xc3\xbcn", "'gr\xc3\xbcn'" },
	{ "PORTSHIM_GROUP", " ", "' '" },
	{ "PORTSHIM_GROUP", long_group, "'" G48 "...'" },
	{ "PORTSHIM_GROUP_FROM", "A,,B", "'A,,B'" },
	{ "PORTSHIM_GROUP_FROM", "A,", "'A,'" },
	{ "PORTSHIM_GROUP_FROM", " , ", "' , '" },
	{ "PORTSHIM_GROUP_FROM", "1ABC", "'1ABC'" },
	{ "PORTSHIM_GROUP_FROM", "A-B", "'A-B'" },
	{ "PORTSHIM_GROUP_FROM", "A B", "'A B'" },
	{ "PORTSHIM_GROUP_FROM", "OK,$X", "'$X'" },
	{ "PORTSHIM_GROUP_FROM", "A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P,Q",
	  "'A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P,Q'" },
	{ "PORTSHIM_GROUP_FROM", long_name, "'NNNNNNNN" },
	{ "PORTSHIM_MAP_FILE", long_path, "'" P48 "...'" },
	{ "PORTSHIM_RANGE", "20000", "'20000'" },
	{ "PORTSHIM_RANGE", "20000-", "'20000-'" },
	{ "PORTSHIM_RANGE", "-30000", "'-30000'" },
	{ "PORTSHIM_RANGE", "0-100", "'0-100'" },
	{ "PORTSHIM_RANGE", "100-65536", "'100-65536'" },
	{ "PORTSHIM_RANGE", "30000-20000", "'30000-20000'" },
	{ "PORTSHIM_RANGE", "abc", "'abc'" },
	{ "PORTSHIM_RANGE", "20000-30000-1", "'20000-30000-1'" },
	{ "PORTSHIM_RANGE", " 20000-30000", "' 20000-30000'" },
	{ "PORTSHIM_RANGE", "20000 - 30000", "'20000 - 30000'" },
	{ "PORTSHIM_RANGE", "+1-2", "'+1-2'" },
	{ "PORTSHIM_RANGE", "0x10-0x20", "'0x10-0x20'" },
	{ "PORTSHIM_RANGE", "99999999999999999999-1",
	  "'99999999999999999999-1'" },
	{ "PORTSHIM_REGISTRY", long_path, "'" P48 "...'" },
	{ "PORTSHIM_REGISTRY", "registry", "'registry'" },
	{ "PORTSHIM_REGISTRY", "./reg", "'./reg'" },
	{ "PORTSHIM_REGISTRY", "~/reg", "'~/reg'" },
	{ "PORTSHIM_UNMAPPED", "deny", "'deny'" },
	{ "PORTSHIM_UNMAPPED", "REFUSE", "'REFUSE'" },
	{ "PORTSHIM_UNMAPPED", " pass", "' pass'" },
	{ "PORTSHIM_UNMAPPED", "pass\n", "'pass?'" },
	{ "PORTSHIM_ON_ERROR", "ignore", "'ignore'" },
	{ "PORTSHIM_ON_ERROR", "FAIL", "'FAIL'" },
	{ "PORTSHIM_ON_ERROR", "1", "'1'" },
	{ "PORTSHIM_LOG", "warn", "'warn'" },
	{ "PORTSHIM_LOG", "DEBUG", "'DEBUG'" },
	{ "PORTSHIM_LOG", "3", "'3'" },
	{ "PORTSHIM_LOG", "verbose", "'verbose'" },
	{ "PORTSHIM_LOG_FILE", long_path, "'" P48 "...'" },
	{ "PORTSHIM_BYPASS", "skip", "'skip'" },
	{ "PORTSHIM_BYPASS", "Warn", "'Warn'" },
	{ "PORTSHIM_BYPASS", "supervise ", "'supervise '" },
	{ "PORTSHIM_KEEP_ENV", "yes", "'yes'" },
	{ "PORTSHIM_KEEP_ENV", "2", "'2'" },
	{ "PORTSHIM_KEEP_ENV", "true", "'true'" },
	{ "PORTSHIM_KEEP_ENV", " 1", "' 1'" },
	{ "PORTSHIM_KEEP_ENV", "01", "'01'" },
	{ "PORTSHIM_GROUP_OWNER", "abc", "'abc'" },
	{ "PORTSHIM_GROUP_OWNER", "1234", "'1234'" },
	{ "PORTSHIM_GROUP_OWNER", "12:ab", "'12:ab'" },
	{ "PORTSHIM_GROUP_OWNER", ":5", "':5'" },
	{ "PORTSHIM_GROUP_OWNER", "1:2:3", "'1:2:3'" },
	{ "PORTSHIM_REPORT", "ports.txt", "'ports.txt'" },
};

/*
 * err holds exactly one line, "VAR: ...<quoted>..., expected ...\n", and no
 * control character but its final newline.
 */
static void assert_error_line(const char *var, const char *quoted)
{
	size_t vlen = strlen(var), len = strlen(err), i;
	const char *q;

	assert_true(len > vlen + 2);
	assert_memory_equal(err, var, vlen);
	assert_memory_equal(err + vlen, ": ", 2);
	q = strstr(err + vlen + 2, quoted);
	assert_non_null(q);
	assert_non_null(strstr(q + strlen(quoted), ", expected "));
	assert_int_equal(err[len - 1], '\n');
	for (i = 0; i + 1 < len; i++)
		assert_false((unsigned char)err[i] < 0x20 ||
			     (unsigned char)err[i] == 0x7f);
}

static void test_config_invalid(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		int rc;

		env_clear();
		env_set(bc->var, bc->value);
		memset(&cfg, 0x5a, sizeof(cfg));
		memset(err, 'x', sizeof(err));
		rc = ps_config_load(&cfg, env_get, err, sizeof(err));
		if (rc != 1 || !strstr(err, bc->quoted))
			print_error("case %zu %s='%.40s': rc %d: %s", i,
				    bc->var, bc->value, rc, err);
		assert_int_equal(rc, 1);
		assert_error_line(bc->var, bc->quoted);
		/* The variable keeps its default, and nothing else moved. */
		assert_memory_equal(&cfg, &defaults, sizeof(cfg));
	}
}

/* Every variable covered by the table above. */
static void test_config_invalid_covers_all(void **state)
{
	size_t i, j;

	for (i = 0; i < N_VARS; i++) {
		bool found = false;

		for (j = 0; j < sizeof(bad_cases) / sizeof(bad_cases[0]); j++)
			found |= strcmp(bad_cases[j].var, all_vars[i]) == 0;
		if (!found)
			print_error("no invalid case for %s\n", all_vars[i]);
		assert_true(found);
	}
}

/*
 * One bad value in every variable at once: as many errors and lines as
 * variables, each line naming its variable, in the documented order.
 */
static void test_config_invalid_all_at_once(void **state)
{
	const char *line = err;
	size_t i;
	int rc;

	env_clear();
	for (i = 0; i < N_VARS; i++) {
		size_t j;

		for (j = 0; strcmp(bad_cases[j].var, all_vars[i]) != 0; j++)
			;
		env_set(bad_cases[j].var, bad_cases[j].value);
	}
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, N_VARS);
	for (i = 0; i < N_VARS; i++) {
		const char *nl = strchr(line, '\n');
		size_t vlen = strlen(all_vars[i]);

		assert_non_null(nl);
		assert_memory_equal(line, all_vars[i], vlen);
		assert_memory_equal(line + vlen, ": ", 2);
		line = nl + 1;
	}
	assert_string_equal(line, "");
	assert_memory_equal(&cfg, &defaults, sizeof(cfg));
}

/* Good variables are still read when others are bad. */
static void test_config_mixed(void **state)
{
	int rc;

	env_clear();
	env_set("PORTSHIM_PORTS", "tcp:8080");
	env_set("PORTSHIM_GROUP", "bad group");
	env_set("PORTSHIM_RANGE", "30000-40000");
	env_set("PORTSHIM_LOG", "loud");
	env_set("PORTSHIM_BYPASS", "fail");
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 2);
	assert_true(cfg.enabled);
	assert_true(ps_portspec_has(&cfg.ports, PS_TCP, 8080));
	assert_string_equal(cfg.group, "");
	assert_int_equal(cfg.range_lo, 30000);
	assert_int_equal(cfg.range_hi, 40000);
	assert_int_equal(cfg.log_level, PS_LOG_ERROR);
	assert_int_equal(cfg.bypass, PS_BYPASS_FAIL);
	assert_non_null(strstr(err, "PORTSHIM_GROUP: 'bad group'"));
	assert_non_null(strstr(err, "\nPORTSHIM_LOG: 'loud'"));
}

/*
 * A hostile value full of newlines, escapes and length yields one short
 * line: nothing can be injected into the log.
 */
static void test_config_hostile(void **state)
{
	int rc;

	env_clear();
	env_set("PORTSHIM_LOG", hostile);
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 1);
	assert_error_line("PORTSHIM_LOG", "'?portshim[1]: fake line");
	assert_true(strlen(err) < 160);
	assert_non_null(strstr(err, "...'"));

	env_clear();
	env_set("PORTSHIM_PORTS", hostile);
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 1);
	assert_error_line("PORTSHIM_PORTS", "'?portshim[1]: fake line");
	assert_true(strlen(err) < PS_LOG_LINE_MAX);
}

/* The error text is cut to errlen but always terminated; counts stay. */
static void test_config_error_buffer(void **state)
{
	char small[12];
	int rc;

	env_clear();
	env_set("PORTSHIM_LOG", "loud");
	env_set("PORTSHIM_RANGE", "x");
	memset(small, 'x', sizeof(small));
	rc = ps_config_load(&cfg, env_get, small, sizeof(small));
	assert_int_equal(rc, 2);
	assert_string_equal(small, "PORTSHIM_RA");

	memset(small, 'x', sizeof(small));
	rc = ps_config_load(&cfg, env_get, small, 1);
	assert_int_equal(rc, 2);
	assert_int_equal(small[0], '\0');
	assert_int_equal(small[1], 'x');

	rc = ps_config_load(&cfg, env_get, NULL, 0);
	assert_int_equal(rc, 2);
}

/* PORTSHIM_UNMAPPED: refuse for explicit lists, pass for "all". */
static void test_config_unmapped_default(void **state)
{
	static const struct {
		const char *ports, *unmapped;
		int errors;
		enum ps_unmapped expect;
	} cases[] = {
		{ NULL, NULL, 0, PS_UNMAPPED_REFUSE },
		{ "8080", NULL, 0, PS_UNMAPPED_REFUSE },
		{ "all", NULL, 0, PS_UNMAPPED_PASS },
		{ " all ", "", 0, PS_UNMAPPED_PASS },
		{ "all", "refuse", 0, PS_UNMAPPED_REFUSE },
		{ "8080", "pass", 0, PS_UNMAPPED_PASS },
		{ "8080", "refuse", 0, PS_UNMAPPED_REFUSE },
		{ "all", "pass", 0, PS_UNMAPPED_PASS },
		{ "all,8080", NULL, 1, PS_UNMAPPED_REFUSE },
		{ "all", "maybe", 1, PS_UNMAPPED_PASS },
		{ "8080", "maybe", 1, PS_UNMAPPED_REFUSE },
		{ NULL, "pass", 0, PS_UNMAPPED_PASS },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		env_clear();
		if (cases[i].ports)
			env_set("PORTSHIM_PORTS", cases[i].ports);
		if (cases[i].unmapped)
			env_set("PORTSHIM_UNMAPPED", cases[i].unmapped);
		rc = ps_config_load(&cfg, env_get, err, sizeof(err));
		assert_int_equal(rc, cases[i].errors);
		assert_int_equal(cfg.unmapped, cases[i].expect);
	}
}

static void test_group_valid(void **state)
{
	static const struct {
		const char *name;
		bool valid;
	} cases[] = {
		{ "g", true },	  { "g1", true },    { "A-Z.a_z-0.9", true },
		{ ".", true },	  { "-", true },     { "", false },
		{ " g", false },  { "g ", false },   { "a/b", false },
		{ "a:b", false }, { "a\nb", false }, { "gr\xc3\xbcn", false },
		{ NULL, false },
	};
	char name[PS_GROUP_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(ps_group_valid(cases[i].name), cases[i].valid);

	memset(name, 'g', PS_GROUP_MAX);
	name[PS_GROUP_MAX] = '\0';
	assert_true(ps_group_valid(name));
	name[PS_GROUP_MAX] = 'g';
	name[PS_GROUP_MAX + 1] = '\0';
	assert_false(ps_group_valid(name));
}

/* Loads a configuration with PORTSHIM_GROUP_FROM=from, and env vars. */
static void load_group_from(const char *from)
{
	int rc;

	env_set("PORTSHIM_GROUP_FROM", from);
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 0);
}

static void test_group_resolve(void **state)
{
	char out[PS_GROUP_MAX + 1], base[PS_GROUP_MAX + 2];
	int rc;

	/* No PORTSHIM_GROUP_FROM: the base as it is. */
	env_clear();
	rc = ps_config_load(&cfg, env_get, err, sizeof(err));
	assert_int_equal(rc, 0);
	rc = ps_config_group_resolve(&cfg, env_get, "g1", out);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "g1");

	/* Suffixes in the listed order; unset and empty ones skipped. */
	env_clear();
	env_set("PYTEST_XDIST_WORKER", "gw3");
	env_set("PARALLEL_SEQ", "7");
	env_set("EMPTY", "");
	load_group_from("UNSET,PYTEST_XDIST_WORKER,EMPTY,PARALLEL_SEQ");
	rc = ps_config_group_resolve(&cfg, env_get, "g1", out);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "g1.gw3.7");

	/* Values are sanitised: anything outside [A-Za-z0-9._-] is '_'. */
	env_clear();
	env_set("SHARD", "a/b c:\xc3\xbc\n.-_Z9");
	load_group_from("SHARD");
	rc = ps_config_group_resolve(&cfg, env_get, "run", out);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "run.a_b_c____.-_Z9");
	assert_true(ps_group_valid(out));

	/* Exactly PS_GROUP_MAX characters fit; one more does not. */
	memset(base, 'b', 60);
	base[60] = '\0';
	env_clear();
	env_set("W", "12");
	load_group_from("W");
	rc = ps_config_group_resolve(&cfg, env_get, base, out);
	assert_int_equal(rc, 0);
	assert_int_equal(strlen(out), PS_GROUP_MAX);
	assert_string_equal(out + 60, ".12");

	env_clear();
	env_set("W", "123");
	load_group_from("W");
	memset(out, 'x', sizeof(out));
	rc = ps_config_group_resolve(&cfg, env_get, base, out);
	assert_int_equal(rc, -ENAMETOOLONG);
	assert_string_equal(out, "");

	/* No room even for the dot. */
	memset(base, 'b', PS_GROUP_MAX);
	base[PS_GROUP_MAX] = '\0';
	env_clear();
	env_set("W", "1");
	load_group_from("W");
	rc = ps_config_group_resolve(&cfg, env_get, base, out);
	assert_int_equal(rc, -ENAMETOOLONG);
	env_clear();
	env_set("W", "");
	rc = ps_config_group_resolve(&cfg, env_get, base, out);
	assert_int_equal(rc, 0);
	assert_string_equal(out, base);

	/* A base already too long. */
	base[PS_GROUP_MAX] = 'b';
	base[PS_GROUP_MAX + 1] = '\0';
	env_clear();
	load_group_from("W");
	rc = ps_config_group_resolve(&cfg, env_get, base, out);
	assert_int_equal(rc, -ENAMETOOLONG);

	/* A very long value, and out aliasing base. */
	env_clear();
	env_set("W", hostile);
	load_group_from("W");
	rc = ps_config_group_resolve(&cfg, env_get, "g", out);
	assert_int_equal(rc, -ENAMETOOLONG);
	env_clear();
	env_set("W", "x");
	strcpy(out, "g");
	rc = ps_config_group_resolve(&cfg, env_get, out, out);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "g.x");
}

/*
 * The preload's start-up read: the same answers as the full load for
 * what it fills, and not one byte written elsewhere (the port bitmaps
 * stay pages nobody touched).
 */
static void test_config_load_start(void **state)
{
	static struct ps_config start;
	static const unsigned char sentinel = 0xa5;
	const unsigned char *b = (const unsigned char *)&start.ports;

	(void)state;
	env_clear();
	env_set("PORTSHIM_PORTS", "8080,udp:53");
	env_set("PORTSHIM_LOG", "info");
	env_set("PORTSHIM_LOG_FILE", "/tmp/x.log");
	env_set("PORTSHIM_BYPASS", "fail");
	env_set("PORTSHIM_KEEP_ENV", "1");
	env_set("PORTSHIM_REGISTRY", "/tmp/reg");
	env_set("PORTSHIM_GROUP", "g1");
	env_set("PORTSHIM_RANGE", "30000-30010");
	assert_int_equal(ps_config_load(&cfg, env_get, err, sizeof(err)), 0);
	memset(&start, sentinel, sizeof(start));
	ps_config_load_start(&start, env_get);
	assert_true(start.enabled);
	assert_int_equal(start.log_level, cfg.log_level);
	assert_string_equal(start.log_file, cfg.log_file);
	assert_int_equal(start.bypass, cfg.bypass);
	assert_int_equal(start.keep_env, cfg.keep_env);
	assert_string_equal(start.registry, cfg.registry);
	for (size_t i = 0; i < sizeof(start.ports); i++)
		assert_int_equal(b[i], sentinel);
	assert_int_equal((unsigned char)start.group[0], sentinel);
	assert_int_equal((unsigned char)start.map_file[0], sentinel);

	/* An invalid port list: not enabled, as the full load says. */
	env_clear();
	env_set("PORTSHIM_PORTS", "8080,x");
	ps_config_load_start(&start, env_get);
	assert_false(start.enabled);
	assert_int_equal(start.log_level, PS_LOG_ERROR);
	assert_int_equal(start.bypass, PS_BYPASS_WARN);
	assert_false(start.keep_env);
	assert_string_equal(start.registry, "");
}

/* The one list of variables (envvars.h) is the reference's table. */
#define NAME_OF(n, l, s) n,
static const char *const all_names[] = { PS_ENV_VARIABLES(NAME_OF) };
#undef NAME_OF
#define N_NAMES (sizeof(all_names) / sizeof(all_names[0]))

static bool in_list(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < N_NAMES; i++)
		if (strlen(all_names[i]) == len &&
		    memcmp(all_names[i], name, len) == 0)
			return true;
	return false;
}

static void test_env_list(void **state)
{
	static char doc[1 << 17];
	const char *srcdir = getenv("srcdir");
	char path[4096], *p, *end;
	size_t i, j, n, rows = 0;
	bool seen[N_NAMES] = { false };
	FILE *f;

	(void)state;
	assert_string_equal(all_names[0], "PORTSHIM_PORTS");
	for (i = 0; i < N_NAMES; i++)
		for (j = i + 1; j < N_NAMES; j++)
			assert_string_not_equal(all_names[i], all_names[j]);
	assert_true(in_list(PS_SUPCALL_ENV, strlen(PS_SUPCALL_ENV)));
	assert_true(in_list(PS_HANDOFF_ENV, strlen(PS_HANDOFF_ENV)));

	/* make check runs us with srcdir, the top of the source tree. */
	snprintf(path, sizeof(path), "%s/docs/reference.md",
		 srcdir != NULL ? srcdir : ".");
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot read %s", path);
	n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = '\0';
	/* Each row of the variables' table: "| `PORTSHIM_X` |". */
	for (p = doc; (p = strstr(p, "\n| `PORTSHIM_")) != NULL; p = end) {
		p += 4;
		end = strchr(p, '`');
		assert_non_null(end);
		if (!in_list(p, (size_t)(end - p)))
			fail_msg(
				"%.*s is in the reference but not in envvars.h",
				(int)(end - p), p);
		for (i = 0; i < N_NAMES; i++)
			if (strlen(all_names[i]) == (size_t)(end - p) &&
			    memcmp(all_names[i], p, (size_t)(end - p)) == 0)
				seen[i] = true;
		rows++;
	}
	assert_true(rows >= N_NAMES);
	for (i = 0; i < N_NAMES; i++)
		if (!seen[i])
			fail_msg(
				"%s is in envvars.h but not in the reference's "
				"table",
				all_names[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_empty_is_unset),
		cmocka_unit_test(test_config_valid),
		cmocka_unit_test(test_config_valid_edges),
		cmocka_unit_test(test_config_keywords),
		cmocka_unit_test(test_config_invalid),
		cmocka_unit_test(test_config_invalid_covers_all),
		cmocka_unit_test(test_config_invalid_all_at_once),
		cmocka_unit_test(test_config_mixed),
		cmocka_unit_test(test_config_hostile),
		cmocka_unit_test(test_config_error_buffer),
		cmocka_unit_test(test_config_unmapped_default),
		cmocka_unit_test(test_group_valid),
		cmocka_unit_test(test_group_resolve),
		cmocka_unit_test(test_config_load_start),
		cmocka_unit_test(test_env_list),
	};
	size_t i;

	memset(long_path, 'p', PATH_MAX);
	long_path[PATH_MAX] = '\0';
	memset(long_group, 'g', PS_GROUP_MAX + 1);
	long_group[PS_GROUP_MAX + 1] = '\0';
	memset(long_name, 'N', PS_ENV_NAME_MAX + 1);
	long_name[PS_ENV_NAME_MAX + 1] = '\0';
	/* A fake log line after a newline, then escapes, then length. */
	strcpy(hostile, "\nportshim[1]: fake line\r\x1b[2J");
	for (i = strlen(hostile); i < sizeof(hostile) - 1; i++)
		hostile[i] = (char)('a' + i % 26);
	hostile[sizeof(hostile) - 1] = '\0';

	return cmocka_run_group_tests(tests, setup_defaults, NULL);
}
