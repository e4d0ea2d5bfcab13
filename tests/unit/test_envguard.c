/* SPDX-License-Identifier: MIT */
/*
 * test_envguard.c - what a process keeps of its start environment across
 * exec (src/common/envguard.c): the snapshot, the scan of a new
 * environment, the names of what it dropped and the environment rebuilt
 * with them, as the exec wrappers use them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "envguard.h"

#define LIB "/usr/lib/portshim/libportshim.so"

static struct ps_envguard g;

static void snap(char *const *envp, const char *self)
{
	memset(&g, 0, sizeof(g));
	ps_envguard_snapshot(&g, envp, self);
}

/* The rebuilt environment of envp, in buf; NULL-terminated. */
static char **rebuild(char *const *envp, void *buf, size_t len)
{
	struct ps_env_scan sc;
	size_t need;

	ps_envguard_scan(&g, envp, &sc);
	need = ps_envguard_need(&g, &sc);
	assert_true(need > 0 && need <= len);
	return ps_envguard_build(&g, envp, &sc, buf);
}

static size_t count(char *const *envp)
{
	size_t n = 0;

	while (envp[n] != NULL)
		n++;
	return n;
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(ps_envguard_name(0), "PORTSHIM_PORTS");
	assert_null(ps_envguard_name(PS_ENVGUARD_NKEPT));
	assert_int_equal(ps_envguard_index("PORTSHIM_PORTS=8080"), 0);
	assert_int_equal(ps_envguard_index("PORTSHIM_PORTS"), 0);
	assert_true(ps_envguard_index("PORTSHIM_SUPERVISED=1") > 0);
	/* Not ours: another prefix, a longer or shorter name. */
	assert_int_equal(ps_envguard_index("PORTSHIM_PORTSX=1"), -1);
	assert_int_equal(ps_envguard_index("PORTSHIM_=1"), -1);
	assert_int_equal(ps_envguard_index("PATH=/bin"), -1);
	assert_int_equal(ps_envguard_index("XPORTSHIM_PORTS=1"), -1);
}

static void test_snapshot(void **state)
{
	char *env[] = { "PATH=/bin",
			"PORTSHIM_PORTS=8080",
			"PORTSHIM_GROUP=", /* empty: unset */
			"LD_PRELOAD=/a/liba.so " LIB,
			"PORTSHIM_UNKNOWN=1",
			"PORTSHIM_LOG=info",
			NULL };
	size_t i, n = 0;

	(void)state;
	snap(env, LIB);
	for (i = 0; i < PS_ENVGUARD_NKEPT; i++)
		n += g.vars[i] != NULL;
	assert_int_equal(n, 2);
	assert_string_equal(g.vars[0], "PORTSHIM_PORTS=8080");
	assert_string_equal(g.vars[ps_envguard_index("PORTSHIM_LOG")],
			    "PORTSHIM_LOG=info");
	assert_null(g.vars[ps_envguard_index("PORTSHIM_GROUP")]);
	assert_string_equal(g.preload, "LD_PRELOAD=/a/liba.so " LIB);
	assert_string_equal(g.self_entry, LIB);
	/* A copy, not the caller's string. */
	assert_ptr_not_equal(g.vars[0], env[1]);
}

static void test_self_by_name(void **state)
{
	char *env[] = { "LD_PRELOAD=/build/src/shim/.libs/libportshim.so",
			NULL };

	(void)state;
	/* Loaded from another path with the same name: still ours. */
	snap(env, "/elsewhere/libportshim.so");
	assert_string_equal(g.self_entry,
			    "/build/src/shim/.libs/libportshim.so");
	/* Unknown: no entry of ours, so nothing about LD_PRELOAD is
	 * missing later. */
	snap(env, NULL);
	assert_string_equal(g.self_entry, "");
}

static void test_full_snapshot(void **state)
{
	static char big[PS_ENVGUARD_SNAP + 32];
	char *env[] = { big, "PORTSHIM_LOG=debug", NULL };

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "PORTSHIM_PORTS=", 15);
	big[sizeof(big) - 1] = '\0';
	snap(env, NULL);
	/* Too big to keep: not kept, and the rest still is. */
	assert_null(g.vars[0]);
	assert_string_equal(g.vars[ps_envguard_index("PORTSHIM_LOG")],
			    "PORTSHIM_LOG=debug");
}

static void test_scan_scrubbed(void **state)
{
	char *start[] = { "PORTSHIM_PORTS=8080", "PORTSHIM_GROUP=g",
			  "LD_PRELOAD=" LIB, NULL };
	char *scrubbed[] = { "PATH=/bin", NULL };
	char *kept[] = { "PORTSHIM_GROUP=other", "PORTSHIM_PORTS=1",
			 "LD_PRELOAD=/x/libportshim.so", NULL };
	struct ps_env_scan sc;
	char names[256];

	(void)state;
	snap(start, LIB);
	ps_envguard_scan(&g, scrubbed, &sc);
	assert_int_equal(sc.count, 1);
	assert_int_equal(sc.nmissing, 2);
	assert_true(sc.missing[0]);
	assert_true(sc.preload_missing);
	assert_null(sc.preload);
	ps_envguard_names(&sc, names, sizeof(names));
	assert_string_equal(names,
			    "LD_PRELOAD, PORTSHIM_PORTS, PORTSHIM_GROUP");

	/* Changed values are the program's choice: nothing missing. A
	 * copy of the library by the same name counts as ours. */
	ps_envguard_scan(&g, kept, &sc);
	assert_int_equal(sc.nmissing, 0);
	assert_false(sc.preload_missing);
	ps_envguard_names(&sc, names, sizeof(names));
	assert_string_equal(names, "");

	/* NULL is an empty environment. */
	ps_envguard_scan(&g, NULL, &sc);
	assert_int_equal(sc.count, 0);
	assert_int_equal(sc.nmissing, 2);
}

static void test_names_cut(void **state)
{
	char *start[] = { "PORTSHIM_PORTS=8080", "PORTSHIM_GROUP=g",
			  "PORTSHIM_RANGE=1-2", "LD_PRELOAD=" LIB, NULL };
	char *other[] = { "LD_PRELOAD=/a/liba.so", NULL };
	struct ps_env_scan sc;
	char names[40];

	(void)state;
	snap(start, LIB);
	ps_envguard_scan(&g, other, &sc);
	ps_envguard_names(&sc, names, sizeof(names));
	/* LD_PRELOAD is there without us; the rest does not fit. */
	assert_string_equal(names, "the portshim entry of LD_PRELOAD...");
	assert_true(strlen(names) < sizeof(names));
}

static void test_build(void **state)
{
	char *start[] = { "PORTSHIM_PORTS=8080", "PORTSHIM_KEEPER=k",
			  "LD_PRELOAD=" LIB, NULL };
	char *user[] = { "A=1", "LD_PRELOAD=/a/liba.so", "B=2", NULL };
	char *none[] = { "A=1", NULL };
	void *buf[256];
	char **env;

	(void)state;
	snap(start, LIB);
	/* The user's LD_PRELOAD keeps its place and its entries, ours
	 * after them; the missing variables at the end, in list order. */
	env = rebuild(user, buf, sizeof(buf));
	assert_int_equal(count(env), 5);
	assert_string_equal(env[0], "A=1");
	assert_string_equal(env[1], "LD_PRELOAD=/a/liba.so " LIB);
	assert_string_equal(env[2], "B=2");
	assert_string_equal(env[3], "PORTSHIM_PORTS=8080");
	assert_string_equal(env[4], "PORTSHIM_KEEPER=k");
	/* No LD_PRELOAD at all: the snapshot's. */
	env = rebuild(none, buf, sizeof(buf));
	assert_int_equal(count(env), 4);
	assert_string_equal(env[1], "LD_PRELOAD=" LIB);
	/* Nothing missing: the same entries. */
	env = rebuild(start, buf, sizeof(buf));
	assert_int_equal(count(env), 3);
	assert_ptr_equal(env[0], start[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_self_by_name),
		cmocka_unit_test(test_full_snapshot),
		cmocka_unit_test(test_scan_scrubbed),
		cmocka_unit_test(test_names_cut),
		cmocka_unit_test(test_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
