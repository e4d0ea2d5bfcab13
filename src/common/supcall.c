/* SPDX-License-Identifier: MIT */
/*
 * supcall.c - socket system calls carrying the supervisor's cookie.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "supcall.h"

bool ps_supcall_parse(const char *text, uint64_t *cookie)
{
	uint64_t v = 0;
	int i;

	if (text == NULL)
		return false;
	for (i = 0; i < PS_SUPCALL_COOKIE_LEN; i++) {
		char c = text[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	if (text[i] != '\0' || v == 0)
		return false;
	*cookie = v;
	return true;
}

bool ps_supcall_env_cookie(uint64_t *cookie)
{
	return ps_supcall_parse(secure_getenv(PS_SUPCALL_ENV), cookie);
}

bool ps_supcall_supervised(void)
{
	uint64_t cookie;

	return ps_supcall_env_cookie(&cookie) &&
	       prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == SECCOMP_MODE_FILTER;
}

void ps_supcall_format(uint64_t cookie, char out[PS_SUPCALL_COOKIE_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = PS_SUPCALL_COOKIE_LEN - 1; i >= 0; i--) {
		out[i] = hex[cookie & 0xf];
		cookie >>= 4;
	}
	out[PS_SUPCALL_COOKIE_LEN] = '\0';
}

/*
 * The system call with the cookie in the sixth argument register (the
 * ones in between are zero).
 *
 * The kernel leaves argument registers as they were, and libc's wrappers
 * of three-argument calls (bind, connect, getsockname...) never set the
 * fourth to sixth: had the cookie stayed in its register after our call,
 * the program's next plain call could carry it by accident and slip past
 * the filter (seen in the filter's unit test). So on the machines we know,
 * the call is made here and the registers are cleared right after it.
 * Elsewhere libc's syscall() is used, and that small chance remains.
 */
static long cookie_call(long nr, long a1, long a2, long a3, long a4,
			uint64_t cookie)
{
	long ret;

#if defined(__x86_64__) && !defined(__ILP32__)
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = 0;
	register long r9 __asm__("r9") = (long)cookie;

	__asm__ volatile("syscall\n\t"
			 "xorl %%r10d, %%r10d\n\t"
			 "xorl %%r8d, %%r8d\n\t"
			 "xorl %%r9d, %%r9d"
			 : "=a"(ret), "+r"(r10), "+r"(r8), "+r"(r9)
			 : "0"(nr), "D"(a1), "S"(a2), "d"(a3)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__) && !defined(__ILP32__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = 0;
	register long x5 __asm__("x5") = (long)cookie;

	__asm__ volatile("svc #0\n\t"
			 "mov x3, xzr\n\t"
			 "mov x4, xzr\n\t"
			 "mov x5, xzr"
			 : "+r"(x0), "+r"(x3), "+r"(x4), "+r"(x5)
			 : "r"(x8), "r"(x1), "r"(x2)
			 : "memory");
	ret = x0;
#else
	return syscall(nr, a1, a2, a3, a4, 0, cookie);
#endif
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

long ps_supcall_direct(long nr, long a1, long a2, long a3, long a4)
{
	return cookie_call(nr, a1, a2, a3, a4, 0);
}

int ps_supcall_bind(uint64_t cookie, int fd, const struct sockaddr *addr,
		    socklen_t len)
{
	return (int)cookie_call(SYS_bind, fd, (long)addr, len, 0, cookie);
}

int ps_supcall_connect(uint64_t cookie, int fd, const struct sockaddr *addr,
		       socklen_t len)
{
	return (int)cookie_call(SYS_connect, fd, (long)addr, len, 0, cookie);
}

int ps_supcall_getsockname(uint64_t cookie, int fd, struct sockaddr *addr,
			   socklen_t *len)
{
	return (int)cookie_call(SYS_getsockname, fd, (long)addr, (long)len, 0,
				cookie);
}

int ps_supcall_getpeername(uint64_t cookie, int fd, struct sockaddr *addr,
			   socklen_t *len)
{
	return (int)cookie_call(SYS_getpeername, fd, (long)addr, (long)len, 0,
				cookie);
}

ssize_t ps_supcall_sendmsg(uint64_t cookie, int fd, const struct msghdr *msg,
			   int flags)
{
	return cookie_call(SYS_sendmsg, fd, (long)msg, flags, 0, cookie);
}

int ps_supcall_sendmmsg(uint64_t cookie, int fd, struct mmsghdr *vec,
			unsigned int vlen, int flags)
{
	return (int)cookie_call(SYS_sendmmsg, fd, (long)vec, vlen, flags,
				cookie);
}

ssize_t ps_supcall_sendto(uint64_t cookie, int fd, const void *buf, size_t len,
			  int flags, const struct sockaddr *addr,
			  socklen_t addrlen)
{
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	if (addr != NULL) {
		msg.msg_name = (void *)addr;
		msg.msg_namelen = addrlen;
	}
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	return ps_supcall_sendmsg(cookie, fd, &msg, flags);
}
