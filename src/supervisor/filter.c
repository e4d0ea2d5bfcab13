/* SPDX-License-Identifier: MIT */
/*
 * filter.c - the seccomp filter of supervised processes (see filter.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "filter.h"
#include "supcall.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

#if defined(__x86_64__) && !defined(__ILP32__)
#define SV_ARCH AUDIT_ARCH_X86_64
#define SV_X32_BIT 0x40000000u /* x32 calls: other numbers, other ABI */
#elif defined(__aarch64__) && !defined(__ILP32__)
#define SV_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define SV_ARCH AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SV_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define SV_ARCH AUDIT_ARCH_S390X
#endif

/* The two 32-bit halves of a 64-bit argument, as BPF loads them. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define ARG_HI(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#define ARG_HI(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#endif

int ps_sv_filter_supported(void)
{
#ifdef SV_ARCH
	return 1;
#else
	return 0;
#endif
}

#ifdef SV_ARCH

/* Jump targets of the program, placed at its end. */
enum label {
	L_NONE = 0,
	L_NEXT, /* the following instruction */
	L_COOKIE,
	L_SENDTO,
	L_SENDLEN,
	L_NOTIFY,
	L_ALLOW,
	L_ENOSYS,
	L_COUNT
};

/*
 * A tiny assembler: conditional jumps name labels, which are resolved
 * once every instruction is placed (classic BPF only jumps forward, by
 * at most 255 instructions).
 */
struct asm_state {
	struct ps_sv_filter *f;
	unsigned char jt[PS_SV_FILTER_MAX], jf[PS_SV_FILTER_MAX];
	int at[L_COUNT];
	bool overflow;
};

static void emit(struct asm_state *a, unsigned short code, unsigned k,
		 enum label jt, enum label jf)
{
	unsigned short i = a->f->len;

	if (i >= PS_SV_FILTER_MAX) {
		a->overflow = true;
		return;
	}
	a->f->insns[i] = (struct sock_filter)BPF_JUMP(code, k, 0, 0);
	a->jt[i] = (unsigned char)jt;
	a->jf[i] = (unsigned char)jf;
	a->f->len++;
}

static void stmt(struct asm_state *a, unsigned short code, unsigned k)
{
	emit(a, code, k, L_NONE, L_NONE);
}

static void place(struct asm_state *a, enum label l)
{
	a->at[l] = a->f->len;
}

/* If nr equals the accumulator, go to target. */
static void on_nr(struct asm_state *a, long nr, enum label target)
{
	emit(a, BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, target, L_NEXT);
}

static int resolve(struct asm_state *a)
{
	for (unsigned short i = 0; i < a->f->len; i++) {
		struct sock_filter *in = &a->f->insns[i];
		int t;

		if (BPF_CLASS(in->code) != BPF_JMP)
			continue;
		for (int side = 0; side < 2; side++) {
			enum label l = side ? a->jf[i] : a->jt[i];

			t = l == L_NEXT ? i + 1 : a->at[l];
			if (t <= i || t - (i + 1) > 255)
				return -EINVAL;
			if (side)
				in->jf = (unsigned char)(t - (i + 1));
			else
				in->jt = (unsigned char)(t - (i + 1));
		}
	}
	return 0;
}

int ps_sv_filter_build(struct ps_sv_filter *f, uint64_t cookie)
{
	struct asm_state a;

	memset(f, 0, sizeof(*f));
	memset(&a, 0, sizeof(a));
	a.f = f;

	/* Another ABI: its numbers mean other calls. Let it be. */
	stmt(&a, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, SV_ARCH, L_NEXT, L_ALLOW);
	stmt(&a, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef SV_X32_BIT
	emit(&a, BPF_JMP | BPF_JGE | BPF_K, SV_X32_BIT, L_ALLOW, L_NEXT);
#endif
#ifdef SYS_io_uring_setup
	on_nr(&a, SYS_io_uring_setup, L_ENOSYS);
#endif
	on_nr(&a, SYS_sendto, L_SENDTO);
	on_nr(&a, SYS_execve, L_NOTIFY);
#ifdef SYS_execveat
	on_nr(&a, SYS_execveat, L_NOTIFY);
#endif
	on_nr(&a, SYS_bind, L_COOKIE);
	on_nr(&a, SYS_connect, L_COOKIE);
	on_nr(&a, SYS_getsockname, L_COOKIE);
	on_nr(&a, SYS_getpeername, L_COOKIE);
	on_nr(&a, SYS_sendmsg, L_COOKIE);
	on_nr(&a, SYS_sendmmsg, L_COOKIE);
	stmt(&a, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

	/* The sixth argument holds the cookie: portshim's own call. */
	place(&a, L_COOKIE);
	stmt(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(5));
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, (unsigned)(cookie & 0xffffffffu),
	     L_NEXT, L_NOTIFY);
	stmt(&a, BPF_LD | BPF_W | BPF_ABS, ARG_HI(5));
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, (unsigned)(cookie >> 32), L_ALLOW,
	     L_NOTIFY);

	/* sendto without a destination (a connected socket): let it be. */
	place(&a, L_SENDTO);
	stmt(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(4));
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, 0, L_NEXT, L_SENDLEN);
	stmt(&a, BPF_LD | BPF_W | BPF_ABS, ARG_HI(4));
	emit(&a, BPF_JMP | BPF_JEQ | BPF_K, 0, L_ALLOW, L_SENDLEN);
	/*
	 * A destination shorter than a sockaddr_in is no IPv4 or IPv6
	 * address (the kernel refuses those with EINVAL): a datagram to a
	 * Unix socket (syslog's /dev/log), to netlink. Let it be. The
	 * length is a socklen_t: its low 32 bits, unsigned.
	 */
	place(&a, L_SENDLEN);
	stmt(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(5));
	emit(&a, BPF_JMP | BPF_JGE | BPF_K,
	     (unsigned)sizeof(struct sockaddr_in), L_NOTIFY, L_ALLOW);

	place(&a, L_NOTIFY);
	stmt(&a, BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	place(&a, L_ALLOW);
	stmt(&a, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	place(&a, L_ENOSYS);
	stmt(&a, BPF_RET | BPF_K,
	     SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));

	if (a.overflow)
		return -ENOSYS;
	return resolve(&a) == 0 ? 0 : -ENOSYS;
}

#else

int ps_sv_filter_build(struct ps_sv_filter *f, uint64_t cookie)
{
	(void)cookie;
	memset(f, 0, sizeof(*f));
	return -ENOSYS;
}

#endif

int ps_sv_kernel_check(char *why, size_t len)
{
	struct utsname u;
	const char *release = "?";
	const char *missing = NULL;
	unsigned action = SECCOMP_RET_USER_NOTIF;
	int pidfd, rc = 0;

	if (uname(&u) == 0)
		release = u.release;
	if (!ps_sv_filter_supported()) {
		snprintf(why, len,
			 "the seccomp supervisor does not know this "
			 "machine's system call ABI");
		return -ENOSYS;
	}
	if (ps_supcall_direct(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0,
			      (long)&action, 0) != 0) {
		rc = -errno;
		missing = errno == EOPNOTSUPP ?
				  "seccomp user notification (Linux 5.0)" :
				  "seccomp filters (CONFIG_SECCOMP_FILTER)";
		goto out;
	}
	pidfd = (int)ps_supcall_direct(SYS_pidfd_open, getpid(), 0, 0, 0);
	if (pidfd < 0) {
		rc = -errno;
		missing = "pidfd_open (Linux 5.3)";
		goto out;
	}
	/* An invalid descriptor number: EBADF if the call exists. */
	if (ps_supcall_direct(SYS_pidfd_getfd, pidfd, -1, 0, 0) >= 0 ||
	    errno == ENOSYS) {
		rc = -ENOSYS;
		missing = "pidfd_getfd (Linux 5.6)";
	}
	close(pidfd);
out:
	if (missing != NULL)
		snprintf(why, len,
			 "this kernel (%s) does not offer %s here "
			 "(%s); the supervisor needs Linux 5.6 or later with "
			 "seccomp user notification and pidfd_getfd",
			 release, missing, strerror(-rc));
	return rc;
}

int ps_sv_filter_install(const struct ps_sv_filter *f)
{
	struct sock_fprog prog = {
		.len = f->len,
		.filter = (struct sock_filter *)f->insns,
	};
	unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER |
			      SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	long fd;

	if (f->len == 0)
		return -ENOSYS;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	/*
	 * WAIT_KILLABLE_RECV (Linux 5.19): once the supervisor has read a
	 * notification, only a fatal signal interrupts the call, so Go's
	 * preemption signals do not make it restart while we work on it.
	 * Older kernels refuse the flag; the handlers cope with restarts.
	 */
	fd = ps_supcall_direct(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			       (long)flags, (long)&prog, 0);
	if (fd < 0 && errno == EINVAL) {
		flags &= ~SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
		fd = ps_supcall_direct(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
				       (long)flags, (long)&prog, 0);
	}
	return fd < 0 ? -errno : (int)fd;
}
