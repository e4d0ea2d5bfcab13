/* SPDX-License-Identifier: MIT */
/*
 * rawsys.h - the kernel's system call, without libc.
 *
 * ps_rawsys() makes a system call and returns what the kernel returned:
 * the result, or -errno. It writes no errno, takes no lock, reads no
 * thread-local state and allocates nothing, so it is safe where libc's
 * wrappers are not: before libc's syscall() is known (the shim's
 * fallback, syscall.c), and in a process that shares its memory, and so
 * its errno, with another one (the keeper, keeper_thin.c).
 *
 * PS_HAVE_RAWSYS is defined where we know the calling convention
 * (x86-64 and AArch64, LP64). Elsewhere ps_rawsys() returns -ENOSYS and
 * callers take their libc path.
 */
#ifndef PS_RAWSYS_H
#define PS_RAWSYS_H

#include <errno.h>

#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(__ILP32__)
#define PS_HAVE_RAWSYS 1
#endif

static inline long ps_rawsys(long nr, long a1, long a2, long a3, long a4,
			     long a5, long a6)
{
	long ret;

#if defined(PS_HAVE_RAWSYS) && defined(__x86_64__)
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10),
			   "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
#elif defined(PS_HAVE_RAWSYS) && defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	ret = x0;
#else
	(void)nr;
	(void)a1;
	(void)a2;
	(void)a3;
	(void)a4;
	(void)a5;
	(void)a6;
	ret = -ENOSYS;
#endif
	return ret;
}

/* A raw result the libc way: -1 with errno set, or the result. */
static inline long ps_rawsys_errno(long ret)
{
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

/* The same with fewer arguments (the rest are zero). */
#define ps_rawsys0(nr) ps_rawsys((nr), 0, 0, 0, 0, 0, 0)
#define ps_rawsys1(nr, a) ps_rawsys((nr), (long)(a), 0, 0, 0, 0, 0)
#define ps_rawsys2(nr, a, b) ps_rawsys((nr), (long)(a), (long)(b), 0, 0, 0, 0)
#define ps_rawsys3(nr, a, b, c) \
	ps_rawsys((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define ps_rawsys4(nr, a, b, c, d) \
	ps_rawsys((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define ps_rawsys5(nr, a, b, c, d, e)                                          \
	ps_rawsys((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), \
		  0)
#define ps_rawsys6(nr, a, b, c, d, e, f)                                       \
	ps_rawsys((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), \
		  (long)(f))

#endif
