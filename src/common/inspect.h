/* SPDX-License-Identifier: MIT */
/*
 * inspect.h - can the preload library see a program? Looks at an
 * executable before it runs and says whether LD_PRELOAD will reach it and
 * whether its network calls go through libc.
 *
 * A program escapes the shim when the dynamic loader never runs (static
 * binaries), when it is a loader that cannot load a glibc library (musl,
 * another ELF class or machine), when the loader runs in secure mode and
 * ignores LD_PRELOAD (setuid, setgid, file capabilities that raise
 * privileges), or when the program makes its own system calls (Go, with or
 * without cgo). Scripts ("#!") are judged by their interpreter, one level
 * deep: an interpreter that is itself a script is not followed.
 *
 * Everything here reads the file through a descriptor with bounded
 * pread()s into stack buffers: no allocation, no stdio, no global state.
 * That makes it usable in the preload library's exec wrappers, including
 * in the child of a vfork(), and in a seccomp supervisor.
 */
#ifndef PS_INSPECT_H
#define PS_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* Why a program escapes the shim; the first that applies, in this order. */
enum ps_inspect_verdict {
	PS_INSPECT_VISIBLE = 0, /* seen (or not an ELF at all) */
	PS_INSPECT_SETID,	/* setuid/setgid changing the ids */
	PS_INSPECT_FILECAPS,	/* file caps raising privileges */
	PS_INSPECT_FOREIGN,	/* another ELF class or machine */
	PS_INSPECT_MUSL,	/* musl's dynamic loader */
	PS_INSPECT_GO,		/* a Go program */
	PS_INSPECT_STATIC,	/* no PT_INTERP: no loader */
};

/*
 * Facts found, whatever the verdict (ps_inspect.flags). For a "#!"
 * script (F_SCRIPT), the facts are its interpreter's. SETUID and SETGID
 * are set only when the bit changes the caller's ids, FILECAPS only when
 * the capabilities raise its privileges; NOSUID: on a nosuid mount, where
 * both are ignored.
 */
#define PS_INSPECT_F_ELF 0x001u	    /* an ELF executable */
#define PS_INSPECT_F_DYNAMIC 0x002u /* has PT_INTERP */
#define PS_INSPECT_F_GO 0x004u	    /* Go section or note */
#define PS_INSPECT_F_SETUID 0x008u
#define PS_INSPECT_F_SETGID 0x010u
#define PS_INSPECT_F_FILECAPS 0x020u
#define PS_INSPECT_F_MUSL 0x040u    /* PT_INTERP is ld-musl */
#define PS_INSPECT_F_FOREIGN 0x080u /* not our class/machine */
#define PS_INSPECT_F_SCRIPT 0x100u
#define PS_INSPECT_F_NOSUID 0x200u

#define PS_INSPECT_PATH_MAX 256 /* interpreter paths kept */
#define PS_INSPECT_REASON_MAX 320

/*
 * The credentials that decide whether an exec raises privileges (the
 * kernel's "secureexec", which makes the loader ignore LD_PRELOAD).
 */
struct ps_inspect_creds {
	uid_t uid;		  /* real uid */
	gid_t gid;		  /* real gid */
	bool no_new_privs;	  /* PR_GET_NO_NEW_PRIVS: set-id bits ignored */
	uint64_t cap_inheritable; /* the inheritable set */
};

struct ps_inspect {
	enum ps_inspect_verdict verdict;
	unsigned flags;	      /* PS_INSPECT_F_* */
	uint32_t setid_owner; /* uid (setuid) or gid (setgid) */
	uint16_t elf_machine; /* e_machine, when F_ELF */
	uint8_t elf_class;    /* ELFCLASS32/64, when F_ELF */
	/* PT_INTERP of the examined ELF ("" if none or too long). */
	char loader[PS_INSPECT_PATH_MAX];
	/* The "#!" interpreter, when F_SCRIPT ("" otherwise). */
	char interp[PS_INSPECT_PATH_MAX];
	/*
	 * Why, as a phrase that follows the program's name: "is statically
	 * linked (...)". "" when the verdict is PS_INSPECT_VISIBLE.
	 */
	char reason[PS_INSPECT_REASON_MAX];
};

/*
 * Fills cr with the calling process's real ids, no_new_privs flag and
 * inheritable capabilities (system calls only: safe after vfork).
 * Returns 0 or -errno (cr then holds the ids and no capability).
 */
int ps_inspect_creds_self(struct ps_inspect_creds *cr);

/*
 * Inspects the executable open on fd (any offset; pread only) as a
 * process with credentials cr would run it (NULL: this process, whose
 * credentials are then asked for only where they can matter: set-id
 * bits, or a uid other than 0). A "#!" script is judged by
 * its interpreter, opened relative to the current directory when its path
 * is relative, as the kernel does. Always fills out. Returns 0, or -errno
 * if fd cannot be read (out then says VISIBLE: the exec itself will
 * report the problem).
 */
int ps_inspect_fd(int fd, const struct ps_inspect_creds *cr,
		  struct ps_inspect *out);

/*
 * ps_inspect_fd on path (opened O_RDONLY|O_CLOEXEC relative to dirfd,
 * following symlinks as exec does), with the caller's credentials.
 * Returns 0, or -errno if it cannot be opened (out says VISIBLE).
 */
int ps_inspect_path(int dirfd, const char *path, struct ps_inspect *out);

/*
 * Walks execvp()'s search path for a command name without '/': each call
 * writes the next candidate, an entry of the path (*cursor starts as
 * path_env; NULL: "/bin:/usr/bin", glibc's default; an empty entry is the
 * current directory) joined with file, into out (len bytes). Returns 1
 * with a candidate, -ENAMETOOLONG for one too long for out (the walk goes
 * on), or 0 at the end. No allocation.
 */
int ps_path_next(const char **cursor, const char *file, char *out, size_t len);

/*
 * Resolves a command name as execvp() does: a name containing '/' is
 * copied as is; otherwise each entry of path_env (NULL: "/bin:/usr/bin",
 * glibc's default; an empty entry is the current directory) is tried and
 * the first regular file the caller may execute wins (a candidate too
 * long for out is skipped). Returns 0 with the path in out (len bytes),
 * -ENOENT if none, -EACCES if only files without execute permission were
 * found, or -ENAMETOOLONG for a name with a '/' longer than out.
 */
int ps_inspect_which(const char *file, const char *path_env, char *out,
		     size_t len);

/*
 * Writes the phrase that explains verdict (which need not be in->verdict:
 * `portshim doctor` words each check) for the facts in in, as it follows
 * a program's name: "is statically linked, so no dynamic loader runs to
 * preload the library". "" for PS_INSPECT_VISIBLE.
 */
void ps_inspect_phrase(const struct ps_inspect *in,
		       enum ps_inspect_verdict verdict, char *buf, size_t len);

/*
 * What a user can do about a verdict: a short imperative sentence
 * without its period, e.g. "Run an unprivileged copy of it". "" for
 * VISIBLE.
 */
const char *ps_inspect_advice(enum ps_inspect_verdict verdict);

/*
 * Formats the one-line message about prog that the exec wrappers and
 * `portshim run` print, for PORTSHIM_BYPASS mode (warn, fail, or
 * supervise, which reads as warn: the message is for a program that no
 * supervisor watches; nothing for ignore or a visible program: buf gets
 * ""). No prefix, no newline. Returns the length written (truncated to
 * len - 1).
 */
size_t ps_inspect_message(const struct ps_inspect *in, const char *prog,
			  enum ps_bypass mode, char *buf, size_t len);

/*
 * True if the program at path (relative to dirfd) can tell that it never
 * binds, connects or starts another program: a native ELF whose dynamic
 * string table names no library but the C library and none of the socket,
 * exec, spawn, fork, dlopen and syscall functions (true(1), false(1),
 * sleep(1), cat(1) on glibc systems). False when it cannot tell: scripts,
 * static programs, programs without section headers. Such a program
 * escapes nothing when it runs without the shim, so the exec wrappers do
 * not warn about it. Reads through a descriptor into stack buffers, as
 * the rest of this file.
 */
bool ps_inspect_harmless(int dirfd, const char *path);

#endif
