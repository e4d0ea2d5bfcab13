/* SPDX-License-Identifier: MIT */
/*
 * test_sockaddr.c - port access, copies, locality and this host's
 * interface addresses (src/common/sockaddr.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../helpers/psaddr.h"
#include "sockaddr.h"

static socklen_t make(union ps_sockaddr *a, const char *text, uint16_t port)
{
	union psh_addr p;
	socklen_t len = psh_addr(&p, text, port);

	if (len == 0)
		fail_msg("bad address %s", text);
	memset(a, 0, sizeof(*a));
	memcpy(a, &p, len);
	return len;
}

static bool local(const char *text)
{
	union ps_sockaddr a;

	make(&a, text, 1);
	return ps_sockaddr_is_local(&a.sa);
}

static bool host(const char *text)
{
	union ps_sockaddr a;

	make(&a, text, 1);
	return ps_sockaddr_is_host(&a.sa);
}

static void test_sockaddr_port_lengths(void **state)
{
	union ps_sockaddr a;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	uint16_t port = 0;
	socklen_t len;

	(void)state;
	len = make(&a, "127.0.0.1", 8080);
	assert_true(ps_sockaddr_port(&a.sa, len, &port));
	assert_int_equal(port, 8080);
	assert_false(ps_sockaddr_port(&a.sa, len - 1, &port));
	assert_false(ps_sockaddr_port(&a.sa, 1, &port));
	assert_false(ps_sockaddr_port(NULL, len, &port));
	len = make(&a, "::1", 9000);
	assert_true(ps_sockaddr_port(&a.sa, len, &port));
	assert_int_equal(port, 9000);
	assert_false(
		ps_sockaddr_port(&a.sa, sizeof(struct sockaddr_in), &port));
	assert_false(
		ps_sockaddr_port((struct sockaddr *)&un, sizeof(un), &port));
	assert_false(ps_sockaddr_port(&unspec, sizeof(unspec), &port));
}

static void test_sockaddr_copy_leaves_source(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	union ps_sockaddr a, out;
	socklen_t len = make(&a, "::ffff:127.0.0.1", 8080);
	void *ro;
	uint16_t port = 0;

	(void)state;
	/* The source lies in a read-only page: a write would crash. */
	ro = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED);
	memcpy(ro, &a, sizeof(a));
	assert_return_code(mprotect(ro, (size_t)page, PROT_READ), errno);
	ps_sockaddr_copy_port(&out, ro, len, 24117);
	assert_true(ps_sockaddr_port(&out.sa, len, &port));
	assert_int_equal(port, 24117);
	assert_memory_equal(&out.in6.sin6_addr, &a.in6.sin6_addr, 16);
	assert_true(ps_sockaddr_port(ro, len, &port));
	assert_int_equal(port, 8080);
	munmap(ro, (size_t)page);
}

static void test_sockaddr_patch_needs_room(void **state)
{
	union ps_sockaddr a;
	unsigned char buf[sizeof(a)];
	uint16_t port = 0;

	(void)state;
	make(&a, "127.0.0.1", 24117);
	memcpy(buf, &a, sizeof(a));
	/* Three bytes hold the family and half the port: untouched. */
	ps_sockaddr_patch_port((struct sockaddr *)buf, 3, 8080);
	assert_memory_equal(buf, &a, sizeof(a));
	ps_sockaddr_patch_port((struct sockaddr *)buf, 4, 8080);
	assert_true(ps_sockaddr_port((struct sockaddr *)buf,
				     sizeof(struct sockaddr_in), &port));
	assert_int_equal(port, 8080);
}

static void test_sockaddr_local_forms(void **state)
{
	(void)state;
	assert_true(local("127.0.0.1"));
	assert_true(local("127.255.3.4"));
	assert_true(local("0.0.0.0"));
	assert_true(local("::1"));
	assert_true(local("::"));
	assert_true(local("::ffff:127.0.0.1"));
	assert_true(local("::ffff:127.9.9.9"));
	assert_true(local("::ffff:0.0.0.0"));
	assert_false(local("128.0.0.1"));
	assert_false(local("10.1.2.3"));
	assert_false(local("::2"));
	assert_false(local("::ffff:10.0.0.1"));
	assert_false(local("2001:db8::1"));
}

/* Calls fn(text, arg) for each interface address of this host. */
static void each_interface(void (*fn)(const char *text, void *arg), void *arg)
{
	struct ifaddrs *ifa, *p;
	char text[INET6_ADDRSTRLEN];

	assert_return_code(getifaddrs(&ifa), errno);
	for (p = ifa; p != NULL; p = p->ifa_next) {
		const void *src;

		if (p->ifa_addr == NULL)
			continue;
		if (p->ifa_addr->sa_family == AF_INET)
			src = &((struct sockaddr_in *)p->ifa_addr)->sin_addr;
		else if (p->ifa_addr->sa_family == AF_INET6)
			src = &((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr;
		else
			continue;
		inet_ntop(p->ifa_addr->sa_family, src, text, sizeof(text));
		fn(text, arg);
	}
	freeifaddrs(ifa);
}

static void check_host(const char *text, void *arg)
{
	int *n = arg;
	char mapped[INET6_ADDRSTRLEN + 8];

	if (!host(text))
		fail_msg("interface address %s is not seen as this host", text);
	if (strchr(text, ':') == NULL) {
		snprintf(mapped, sizeof(mapped), "::ffff:%s", text);
		if (!host(mapped))
			fail_msg("%s is not seen as this host", mapped);
	}
	(*n)++;
}

static void find_text(const char *text, void *arg)
{
	const char **want = arg;

	if (*want != NULL && strcmp(text, *want) == 0)
		*want = NULL;
}

/* True if text is none of this host's interface addresses. */
static bool foreign(const char *text)
{
	const char *want = text;

	each_interface(find_text, &want);
	return want != NULL;
}

static void test_sockaddr_host_interfaces(void **state)
{
	int n = 0;

	(void)state;
	assert_true(ps_sockaddr_host_refresh() >= 1);
	each_interface(check_host, &n);
	assert_true(n >= 1);
	assert_true(host("127.0.0.1"));
	assert_true(host("::"));
	/* Documentation addresses, unless this host happens to use them. */
	if (foreign("198.51.100.77"))
		assert_false(host("198.51.100.77"));
	if (foreign("2001:db8::77"))
		assert_false(host("2001:db8::77"));
	if (foreign("198.51.100.77"))
		assert_false(host("::ffff:198.51.100.77"));
}

static volatile sig_atomic_t handler_result;
static char handler_addr[INET6_ADDRSTRLEN];

static void first_interface(const char *text, void *arg)
{
	bool *done = arg;

	if (*done || strncmp(text, "127.", 4) == 0 || strcmp(text, "::1") == 0)
		return;
	snprintf(handler_addr, sizeof(handler_addr), "%s", text);
	*done = true;
}

static void on_signal(int sig)
{
	(void)sig;
	/* The first lookup in this process: it reads the table here. */
	handler_result = host(handler_addr) ? 1 : 2;
}

/*
 * In a child after fork(), a signal handler makes the process's first
 * lookup, so the handler itself reads the addresses from the kernel
 * (this test runs first: no earlier test has filled the table that the
 * child inherits).
 */
static void test_sockaddr_host_in_handler_after_fork(void **state)
{
	bool done = false;
	pid_t pid;
	int st;

	(void)state;
	each_interface(first_interface, &done);
	if (!done)
		skip();
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		signal(SIGUSR1, on_signal);
		raise(SIGUSR1);
		_exit(handler_result == 1 ? 0 : 1);
	}
	assert_return_code(waitpid(pid, &st, 0), errno);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/*
 * The description of an address is built without stdio; it must read
 * exactly as snprintf with inet_ntop would write it, truncation
 * included.
 */
static void check_format(const struct sockaddr *sa, uint16_t port,
			 const char *want)
{
	char got[64];

	ps_sockaddr_format(sa, port, got, sizeof(got));
	assert_string_equal(got, want);
	for (size_t len = 1; len <= strlen(want) + 1; len++) {
		char cut[64], ref[64];

		memset(cut, 'x', sizeof(cut));
		ps_sockaddr_format(sa, port, cut, len);
		snprintf(ref, len, "%s", want);
		assert_string_equal(cut, ref);
		assert_int_equal(cut[len], 'x');
	}
}

static void test_sockaddr_format(void **state)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	(void)state;
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	check_format((struct sockaddr *)&in, 8080, "127.0.0.1:8080");
	inet_pton(AF_INET, "0.0.0.0", &in.sin_addr);
	check_format((struct sockaddr *)&in, 0, "0.0.0.0:0");
	inet_pton(AF_INET, "255.10.200.9", &in.sin_addr);
	check_format((struct sockaddr *)&in, 65535, "255.10.200.9:65535");
	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	check_format((struct sockaddr *)&in6, 8080, "[::1]:8080");
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
	check_format((struct sockaddr *)&in6, 443, "[::ffff:127.0.0.1]:443");
	check_format((struct sockaddr *)&un, 7, "?:7");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sockaddr_host_in_handler_after_fork),
		cmocka_unit_test(test_sockaddr_port_lengths),
		cmocka_unit_test(test_sockaddr_format),
		cmocka_unit_test(test_sockaddr_copy_leaves_source),
		cmocka_unit_test(test_sockaddr_patch_needs_room),
		cmocka_unit_test(test_sockaddr_local_forms),
		cmocka_unit_test(test_sockaddr_host_interfaces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
