/* SPDX-License-Identifier: MIT */
/*
 * test_preload.c - reading LD_PRELOAD lists (src/common/preload.c), as
 * `run` does to add the shim once and the exec wrappers do to find the
 * shim's own entry and to see whether a new environment still has it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "preload.h"

/* The entry found, as a string ("" for none). */
static const char *found(const char *list, const char *path, const char *base)
{
	static char buf[256];
	const char *at = NULL;
	size_t n = ps_preload_find(list, path, base, &at);

	if (n == 0)
		return "";
	assert_non_null(at);
	assert_true(n < sizeof(buf));
	memcpy(buf, at, n);
	buf[n] = '\0';
	return buf;
}

static void test_exact_path(void **state)
{
	(void)state;
	assert_string_equal(found("/a/libx.so /lib/libportshim.so",
				  "/lib/libportshim.so", NULL),
			    "/lib/libportshim.so");
	/* Colons separate too, and runs of separators are one. */
	assert_string_equal(found(":: /a/libx.so: :/lib/libportshim.so ::",
				  "/lib/libportshim.so", NULL),
			    "/lib/libportshim.so");
	/* A prefix or a longer path is another library. */
	assert_string_equal(found("/lib/libportshim.so.1 /lib/libportshim",
				  "/lib/libportshim.so", NULL),
			    "");
	assert_string_equal(found("", "/lib/libportshim.so", NULL), "");
	assert_string_equal(found(" : ", "/lib/libportshim.so", NULL), "");
}

static void test_base_name(void **state)
{
	(void)state;
	/* Another copy of the library, by its last component. */
	assert_string_equal(found("/a/libx.so /opt/ps/libportshim.so",
				  "/lib/libportshim.so", "libportshim.so"),
			    "/opt/ps/libportshim.so");
	assert_string_equal(found("libportshim.so", "/lib/libportshim.so",
				  "libportshim.so"),
			    "libportshim.so");
	/* A name that merely ends the same is not the library. */
	assert_string_equal(found("/a/notlibportshim.so", "/lib/libportshim.so",
				  "libportshim.so"),
			    "");
	/* Without a base name, only the exact path counts. */
	assert_string_equal(
		found("/opt/ps/libportshim.so", "/lib/libportshim.so", NULL),
		"");
	/* The first match is the one returned. */
	assert_string_equal(found("/x/libportshim.so /lib/libportshim.so",
				  "/lib/libportshim.so", "libportshim.so"),
			    "/x/libportshim.so");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_path),
		cmocka_unit_test(test_base_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
