/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - can the preload library see a program?
 *
 * The file is examined the way the kernel and the dynamic loader will
 * treat it, with pread()s of fixed, small sizes into stack buffers: the
 * ELF header, each program header, the section headers and their names,
 * and at most NOTE_BUF bytes of each note. Counts and sizes come from the
 * file, which may be hostile or corrupt, so every one is capped and a
 * file we cannot make sense of is reported as visible: the exec itself
 * will then say what is wrong with it, and we never block a program on a
 * guess.
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "inspect.h"

/* glibc exports capget() but declares it nowhere (libcap's header does). */
extern int capget(cap_user_header_t hdrp, cap_user_data_t datap);

/* Bytes of a file's start examined; the kernel reads as many for "#!". */
#define HEAD_SIZE 2048
/* Caps on what a (possibly hostile) file makes us read. */
#define MAX_PHNUM 512
#define MAX_SHNUM 8192
#define NOTE_BUF 2048
#define SHSTR_BUF 2048
#define NAME_MAX_READ 24
/* Program or section headers read in one system call (2 KB at most). */
#define CHUNK 32u
/* The phrase of a verdict, without the script's "runs under X, which". */
#define PHRASE_MAX 192
_Static_assert(PHRASE_MAX <= PS_INSPECT_REASON_MAX, "a phrase fits a reason");

#define GO_BUILDINFO ".go.buildinfo"
#define GO_BUILDID ".note.go.buildid"

/* The ELF machine of this build: what the preload library can load into. */
#if defined(__x86_64__)
#define NATIVE_MACHINE EM_X86_64
#elif defined(__i386__)
#define NATIVE_MACHINE EM_386
#elif defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#elif defined(__arm__)
#define NATIVE_MACHINE EM_ARM
#elif defined(__riscv)
#define NATIVE_MACHINE EM_RISCV
#elif defined(__powerpc64__)
#define NATIVE_MACHINE EM_PPC64
#elif defined(__s390x__)
#define NATIVE_MACHINE EM_S390
#else
#define NATIVE_MACHINE EM_NONE /* unknown: the machine is not checked */
#endif

/*
 * statfs() f_flags: ST_VALID (the kernel's, since Linux 2.6.36) says the
 * mount flags are filled in; glibc names ST_NOSUID but not ST_VALID.
 */
#ifndef ST_VALID
#define ST_VALID 0x0020
#endif

#if __BYTE_ORDER == __LITTLE_ENDIAN
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

#if __ELF_NATIVE_CLASS == 64
#define NATIVE_CLASS ELFCLASS64
#else
#define NATIVE_CLASS ELFCLASS32
#endif

/*
 * Reads exactly len bytes at off. Returns 0, -EIO for a short read (the
 * file is shorter than its headers claim), or -errno.
 */
static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	if (off > (uint64_t)INT64_MAX - len)
		return -EIO;
	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done,
			  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/*
 * read_at, from head (the file's first hlen bytes, already read) where
 * it covers the range: the program headers, the loader's path and the
 * notes of most executables are there.
 */
static int read_head(int fd, const unsigned char *head, size_t hlen, void *buf,
		     size_t len, uint64_t off)
{
	if (off <= hlen && len <= hlen - off) {
		memcpy(buf, head + off, len);
		return 0;
	}
	return read_at(fd, buf, len, off);
}

/* Reads up to len bytes at off; returns the count or -errno. */
static ssize_t read_some(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	do {
		n = pread(fd, buf, len, (off_t)off);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int ps_inspect_creds_self(struct ps_inspect_creds *cr)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = 0,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int nnp;

	memset(cr, 0, sizeof(*cr));
	cr->uid = getuid();
	cr->gid = getgid();
	nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	cr->no_new_privs = nnp == 1;
	memset(data, 0, sizeof(data));
	if (capget(&hdr, data) < 0)
		return -errno;
	cr->cap_inheritable = (uint64_t)data[0].inheritable |
			      (uint64_t)data[1].inheritable << 32;
	return 0;
}

/*
 * Decides whether the security.capability attribute of fd makes the exec
 * raise privileges, as the kernel's cap_bprm_creds_from_file() does: for a
 * process whose real uid is not 0, an exec is "privilege-elevated" (the
 * loader then ignores LD_PRELOAD) when the file's effective bit is set or
 * the new permitted set is not empty. The file's caps replace the ambient
 * set, and the bounding set is assumed full: where it is not, this may
 * warn about a program that would in fact see the shim, never the reverse.
 * For uid 0, file capabilities add nothing and the exec is not secure.
 */
static bool filecaps_elevate(int fd, const struct ps_inspect_creds *cr)
{
	struct vfs_ns_cap_data caps;
	uint32_t magic, rev;
	uint64_t permitted, inheritable;
	ssize_t n;

	if (cr->uid == 0)
		return false;
	memset(&caps, 0, sizeof(caps));
	n = fgetxattr(fd, "security.capability", &caps, sizeof(caps));
	if (n < (ssize_t)sizeof(uint32_t) * 3)
		return false;
	magic = le32toh(caps.magic_etc);
	rev = magic & VFS_CAP_REVISION_MASK;
	permitted = le32toh(caps.data[0].permitted);
	inheritable = le32toh(caps.data[0].inheritable);
	if (rev == VFS_CAP_REVISION_2 || rev == VFS_CAP_REVISION_3) {
		if (n < (ssize_t)XATTR_CAPS_SZ_2)
			return false;
		permitted |= (uint64_t)le32toh(caps.data[1].permitted) << 32;
		inheritable |= (uint64_t)le32toh(caps.data[1].inheritable)
			       << 32;
	} else if (rev != VFS_CAP_REVISION_1) {
		return false;
	}
	if (magic & VFS_CAP_FLAGS_EFFECTIVE)
		return true;
	return permitted != 0 || (inheritable & cr->cap_inheritable) != 0;
}

/*
 * The set-id and capability facts of an open file for a process with
 * credentials cr. A nosuid mount, or no_new_privs, makes the kernel ignore
 * both (bprm_fill_uid(), get_file_caps()). The setgid bit without group
 * execute permission means mandatory locking, not setgid.
 */
static void check_privileges(int fd, const struct stat *st,
			     const struct ps_inspect_creds *cr,
			     struct ps_inspect *out)
{
	struct ps_inspect_creds mine;
	struct statfs sfs;

	if (cr == NULL) {
		/*
		 * This process's credentials, asked for only when they can
		 * matter: without set-id bits, an exec by uid 0 raises
		 * nothing (file capabilities add nothing to root), and
		 * most execs are those. Four system calls saved per exec.
		 */
		if (!(st->st_mode & (S_ISUID | S_ISGID)) && getuid() == 0)
			return;
		ps_inspect_creds_self(&mine);
		cr = &mine;
	}

	if (fstatfs(fd, &sfs) == 0 && (sfs.f_flags & ST_VALID) &&
	    (sfs.f_flags & ST_NOSUID)) {
		out->flags |= PS_INSPECT_F_NOSUID;
		return;
	}
	if (cr->no_new_privs)
		return;
	if ((st->st_mode & S_ISUID) && st->st_uid != cr->uid) {
		out->flags |= PS_INSPECT_F_SETUID;
		out->setid_owner = (uint32_t)st->st_uid;
	} else if ((st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
		   st->st_gid != cr->gid) {
		out->flags |= PS_INSPECT_F_SETGID;
		out->setid_owner = (uint32_t)st->st_gid;
	}
	if (filecaps_elevate(fd, cr))
		out->flags |= PS_INSPECT_F_FILECAPS;
}

/*
 * True if buf[0..len) holds a note named "Go" (the Go toolchain's build
 * id, ABI hash and package list notes all use that name). Notes are
 * aligned to align bytes (4, or 8 in segments aligned to 8).
 */
static bool notes_have_go(const unsigned char *buf, size_t len, size_t align)
{
	size_t off = 0, namesz, descsz, step;
	ElfW(Nhdr) nh;

	while (len - off >= sizeof(nh)) {
		memcpy(&nh, buf + off, sizeof(nh));
		off += sizeof(nh);
		namesz = nh.n_namesz;
		descsz = nh.n_descsz;
		if (namesz > len - off)
			return false;
		/* Go writes namesz 4 ("Go\0\0"); 3 is the usual form. */
		if ((namesz == 3 || namesz == 4) &&
		    memcmp(buf + off, "Go", 3) == 0)
			return true;
		step = (namesz + align - 1) & ~(align - 1);
		if (step > len - off)
			return false;
		off += step;
		step = (descsz + align - 1) & ~(align - 1);
		if (step > len - off)
			return false;
		off += step;
	}
	return false;
}

/* Looks for a Go note in the first NOTE_BUF bytes of a PT_NOTE segment. */
static bool segment_has_go(int fd, const unsigned char *head, size_t hlen,
			   const ElfW(Phdr) * ph)
{
	unsigned char buf[NOTE_BUF];
	size_t len = ph->p_filesz < sizeof(buf) ? ph->p_filesz : sizeof(buf);
	size_t align = ph->p_align == 8 ? 8 : 4;
	ssize_t n;

	if (ph->p_offset <= hlen && len <= hlen - ph->p_offset)
		return notes_have_go(head + ph->p_offset, len, align);
	n = read_some(fd, buf, len, ph->p_offset);
	if (n <= 0)
		return false;
	return notes_have_go(buf, (size_t)n, align);
}

/* Reads section header i of a file whose headers start at shoff. */
static int read_shdr(int fd, const ElfW(Ehdr) * eh, uint64_t i, ElfW(Shdr) * sh)
{
	return read_at(fd, sh, sizeof(*sh), eh->e_shoff + i * sizeof(*sh));
}

/*
 * Looks for the sections the Go linker always writes, ".go.buildinfo"
 * and ".note.go.buildid", by name. Section headers are optional for
 * executing a file, so their absence proves nothing (the notes are looked
 * at too).
 */
static bool sections_have_go(int fd, const ElfW(Ehdr) * eh)
{
	char strbuf[SHSTR_BUF], name[NAME_MAX_READ + 1];
	ElfW(Shdr) sh, strsh, shs[CHUNK];
	uint64_t shnum = eh->e_shnum, stridx = eh->e_shstrndx, i;
	size_t have = 0;
	ssize_t n;

	if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(ElfW(Shdr)))
		return false;
	if (shnum == 0 || stridx == SHN_XINDEX) {
		/* Many sections: the real values live in section 0. */
		if (read_shdr(fd, eh, 0, &sh) < 0)
			return false;
		if (shnum == 0)
			shnum = sh.sh_size;
		if (stridx == SHN_XINDEX)
			stridx = sh.sh_link;
	}
	if (shnum > MAX_SHNUM || stridx >= shnum ||
	    read_shdr(fd, eh, stridx, &strsh) < 0)
		return false;
	n = read_some(fd, strbuf,
		      strsh.sh_size < sizeof(strbuf) ? strsh.sh_size :
						       sizeof(strbuf),
		      strsh.sh_offset);
	if (n > 0)
		have = (size_t)n;
	for (i = 1; i < shnum; i++) {
		if (i == 1 || i % CHUNK == 0) {
			uint64_t cnt = shnum - i < CHUNK - i % CHUNK ?
					       shnum - i :
					       CHUNK - i % CHUNK;

			if (read_at(fd, &shs[i % CHUNK], cnt * sizeof(sh),
				    eh->e_shoff + i * sizeof(sh)) < 0)
				return false;
		}
		sh = shs[i % CHUNK];
		if (sh.sh_name >= strsh.sh_size)
			continue;
		if (sh.sh_name + sizeof(name) <= have) {
			memcpy(name, strbuf + sh.sh_name, NAME_MAX_READ);
		} else if (have == strsh.sh_size && sh.sh_name < have) {
			/* The whole table is here: the name ends in it. */
			size_t k = have - sh.sh_name;

			memcpy(name, strbuf + sh.sh_name, k);
			memset(name + k, 0, sizeof(name) - k);
		} else {
			n = read_some(fd, name, NAME_MAX_READ,
				      strsh.sh_offset + sh.sh_name);
			if (n <= 0)
				continue;
			memset(name + n, 0, sizeof(name) - (size_t)n);
		}
		name[NAME_MAX_READ] = '\0';
		if (strcmp(name, GO_BUILDINFO) == 0 ||
		    strcmp(name, GO_BUILDID) == 0)
			return true;
	}
	return false;
}

/*
 * The ELF facts of the file on fd, whose first bytes are in head (hlen of
 * them). Leaves out->flags without F_ELF when the file is not an ELF
 * executable we understand.
 */
static void examine_elf(int fd, const unsigned char *head, size_t hlen,
			struct ps_inspect *out)
{
	ElfW(Ehdr) eh;
	ElfW(Phdr) ph, phs[CHUNK];
	uint16_t machine;
	unsigned i;

	if (hlen < EI_NIDENT + 4 || memcmp(head, ELFMAG, SELFMAG) != 0)
		return;
	out->flags |= PS_INSPECT_F_ELF;
	out->elf_class = head[EI_CLASS];
	/* e_machine is at offset 18 in both classes. */
	memcpy(&machine, head + 18, sizeof(machine));
	if (head[EI_DATA] != NATIVE_DATA)
		machine = (uint16_t)(machine >> 8 | machine << 8);
	out->elf_machine = machine;
	if (head[EI_CLASS] != NATIVE_CLASS || head[EI_DATA] != NATIVE_DATA ||
	    (NATIVE_MACHINE != EM_NONE && machine != NATIVE_MACHINE)) {
		out->flags |= PS_INSPECT_F_FOREIGN;
		return;
	}
	if (hlen < sizeof(eh))
		goto not_exec;
	memcpy(&eh, head, sizeof(eh));
	if ((eh.e_type != ET_EXEC && eh.e_type != ET_DYN) ||
	    eh.e_phentsize != sizeof(ph) || eh.e_phnum == 0 ||
	    eh.e_phnum > MAX_PHNUM)
		goto not_exec;
	for (i = 0; i < eh.e_phnum; i++) {
		/* The headers come CHUNK at a time: one read for most. */
		if (i % CHUNK == 0) {
			unsigned n =
				eh.e_phnum - i < CHUNK ? eh.e_phnum - i : CHUNK;

			if (read_head(fd, head, hlen, phs, n * sizeof(ph),
				      eh.e_phoff + (uint64_t)i * sizeof(ph)) <
			    0)
				goto not_exec;
		}
		ph = phs[i % CHUNK];
		if (ph.p_type == PT_INTERP) {
			out->flags |= PS_INSPECT_F_DYNAMIC;
			if (ph.p_filesz > 1 &&
			    ph.p_filesz <= sizeof(out->loader) &&
			    read_head(fd, head, hlen, out->loader, ph.p_filesz,
				      ph.p_offset) == 0) {
				out->loader[ph.p_filesz - 1] = '\0';
				if (strstr(out->loader, "ld-musl") != NULL)
					out->flags |= PS_INSPECT_F_MUSL;
			} else {
				out->loader[0] = '\0';
			}
		} else if (ph.p_type == PT_NOTE &&
			   !(out->flags & PS_INSPECT_F_GO) &&
			   segment_has_go(fd, head, hlen, &ph)) {
			out->flags |= PS_INSPECT_F_GO;
		}
	}
	if (!(out->flags & PS_INSPECT_F_GO) && sections_have_go(fd, &eh))
		out->flags |= PS_INSPECT_F_GO;
	return;
not_exec:
	/* Not something exec will run as it stands: let exec say so. */
	out->flags &= ~(PS_INSPECT_F_ELF | PS_INSPECT_F_DYNAMIC |
			PS_INSPECT_F_GO | PS_INSPECT_F_MUSL);
	out->loader[0] = '\0';
}

/*
 * Parses the interpreter path of a "#!" line into out (len bytes).
 * Returns 0, or -ENOEXEC when there is none or it does not fit (the
 * kernel refuses a truncated one too).
 */
static int parse_shebang(const unsigned char *head, size_t hlen, char *out,
			 size_t len)
{
	size_t i = 2, n = 0;

	while (i < hlen && (head[i] == ' ' || head[i] == '\t'))
		i++;
	while (i < hlen && head[i] != ' ' && head[i] != '\t' &&
	       head[i] != '\n' && head[i] != '\0') {
		if (n + 1 >= len)
			return -ENOEXEC;
		out[n++] = (char)head[i++];
	}
	if (i == hlen || n == 0)
		return -ENOEXEC;
	out[n] = '\0';
	return 0;
}

/* Sets out->verdict from the flags: the first escape, in enum order. */
static void decide(struct ps_inspect *out)
{
	unsigned f = out->flags;

	if (f & (PS_INSPECT_F_SETUID | PS_INSPECT_F_SETGID))
		out->verdict = PS_INSPECT_SETID;
	else if (f & PS_INSPECT_F_FILECAPS)
		out->verdict = PS_INSPECT_FILECAPS;
	else if (!(f & PS_INSPECT_F_ELF))
		out->verdict = PS_INSPECT_VISIBLE;
	else if (f & PS_INSPECT_F_FOREIGN)
		out->verdict = PS_INSPECT_FOREIGN;
	else if (f & PS_INSPECT_F_MUSL)
		out->verdict = PS_INSPECT_MUSL;
	else if (f & PS_INSPECT_F_GO)
		out->verdict = PS_INSPECT_GO;
	else if (!(f & PS_INSPECT_F_DYNAMIC))
		out->verdict = PS_INSPECT_STATIC;
	else
		out->verdict = PS_INSPECT_VISIBLE;
}

void ps_inspect_phrase(const struct ps_inspect *in,
		       enum ps_inspect_verdict verdict, char *buf, size_t len)
{
	switch (verdict) {
	case PS_INSPECT_SETID:
		snprintf(buf, len,
			 "is %s (runs as %s %u), so the dynamic "
			 "loader ignores LD_PRELOAD",
			 in->flags & PS_INSPECT_F_SETUID ? "setuid" : "setgid",
			 in->flags & PS_INSPECT_F_SETUID ? "uid" : "gid",
			 (unsigned)in->setid_owner);
		break;
	case PS_INSPECT_FILECAPS:
		snprintf(buf, len,
			 "has file capabilities "
			 "(security.capability), so the dynamic loader "
			 "ignores LD_PRELOAD");
		break;
	case PS_INSPECT_FOREIGN:
		if (in->elf_class != NATIVE_CLASS)
			snprintf(buf, len,
				 "is a %d-bit program, which the "
				 "%d-bit preload library cannot load into",
				 in->elf_class == ELFCLASS32 ? 32 : 64,
				 NATIVE_CLASS == ELFCLASS32 ? 32 : 64);
		else
			snprintf(buf, len,
				 "is built for another machine "
				 "(ELF machine %u), which the preload library "
				 "cannot load into",
				 (unsigned)in->elf_machine);
		break;
	case PS_INSPECT_MUSL:
		snprintf(buf, len,
			 "uses musl's loader %s, which cannot load "
			 "the glibc preload library",
			 in->loader);
		break;
	case PS_INSPECT_GO:
		snprintf(buf, len,
			 "is a Go program, which makes its network "
			 "system calls itself instead of through libc");
		break;
	case PS_INSPECT_STATIC:
		snprintf(buf, len,
			 "is statically linked, so no dynamic "
			 "loader runs to preload the library");
		break;
	case PS_INSPECT_VISIBLE:
	default:
		buf[0] = '\0';
		break;
	}
}

/* Inspects an ELF (or unknown) file on fd: privileges, then the ELF. */
static int inspect_file(int fd, const struct ps_inspect_creds *cr,
			unsigned char *head, size_t *hlen,
			struct ps_inspect *out)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	n = read_some(fd, head, HEAD_SIZE, 0);
	if (n < 0)
		return (int)n;
	*hlen = (size_t)n;
	/* Linux ignores set-id bits on scripts: only the binary's count. */
	if (!(*hlen >= 2 && head[0] == '#' && head[1] == '!'))
		check_privileges(fd, &st, cr, out);
	examine_elf(fd, head, *hlen, out);
	return 0;
}

int ps_inspect_fd(int fd, const struct ps_inspect_creds *cr,
		  struct ps_inspect *out)
{
	unsigned char head[HEAD_SIZE];
	char phrase[PHRASE_MAX];
	size_t hlen = 0;
	int ifd, rc;

	memset(out, 0, offsetof(struct ps_inspect, loader));
	out->loader[0] = out->interp[0] = out->reason[0] = '\0';
	rc = inspect_file(fd, cr, head, &hlen, out);
	if (rc < 0)
		goto out;
	if (hlen >= 2 && head[0] == '#' && head[1] == '!') {
		out->flags |= PS_INSPECT_F_SCRIPT;
		if (parse_shebang(head, hlen, out->interp,
				  sizeof(out->interp)) < 0) {
			out->interp[0] = '\0';
			goto out;
		}
		ifd = open(out->interp,
			   O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (ifd < 0)
			goto out;
		/* One level only: an interpreter that is a script is not
		 * examined further (its head does not look like an ELF). */
		rc = inspect_file(ifd, cr, head, &hlen, out);
		close(ifd);
		if (rc < 0) {
			rc = 0;
			out->flags &= PS_INSPECT_F_SCRIPT;
			goto out;
		}
		if (hlen >= 2 && head[0] == '#' && head[1] == '!')
			goto out;
	}
out:
	decide(out);
	ps_inspect_phrase(out, out->verdict, phrase, sizeof(phrase));
	if (out->verdict != PS_INSPECT_VISIBLE &&
	    (out->flags & PS_INSPECT_F_SCRIPT)) {
		/* A very long interpreter path shortens the reason; the
		 * message stays one line either way. */
		if (snprintf(out->reason, sizeof(out->reason),
			     "runs under %s, which %s", out->interp,
			     phrase) >= (int)sizeof(out->reason))
			out->reason[sizeof(out->reason) - 1] = '\0';
	} else {
		memcpy(out->reason, phrase, sizeof(phrase));
	}
	return rc;
}

/*
 * The names whose presence in a program's dynamic string table means it
 * may make a socket of its own or start another program: the socket
 * calls, every way to run a program, and the ways to reach code or the
 * kernel that the table does not name (dlopen, syscall).
 */
static const char *const net_names[] = {
	"socket",   "bind",	   "connect",	   "__connect", "sendto",
	"sendmsg",  "sendmmsg",	   "execve",	   "execv",	"execvp",
	"execvpe",  "execl",	   "execlp",	   "execle",	"fexecve",
	"execveat", "posix_spawn", "posix_spawnp", "system",	"popen",
	"fork",	    "vfork",	   "_Fork",	   "clone",	"clone3",
	"dlopen",   "dlmopen",	   "syscall",
};

/* The libraries that such a program may need: the C library, the loader. */
static bool harmless_library(const char *name)
{
	return strcmp(name, "libc.so.6") == 0 ||
	       strncmp(name, "ld-linux", 8) == 0;
}

/* One token of the string table: true if it rules "harmless" out. */
static bool token_risky(const char *tok, size_t len, bool cut)
{
	size_t i;

	if (cut) /* too long to compare: cannot tell */
		return true;
	if (len == 0)
		return false;
	for (i = 0; i < sizeof(net_names) / sizeof(net_names[0]); i++)
		if (strcmp(tok, net_names[i]) == 0)
			return true;
	return strstr(tok, ".so") != NULL && !harmless_library(tok);
}

/* Bytes of a string table looked at, at most. */
#define DYNSTR_MAX (1u << 20)

/*
 * True if the ELF on fd is dynamically linked (eh), needs no library but
 * the C library, and imports none of net_names: it cannot bind, connect
 * or start a program through anything a preload sees or misses. Read
 * from the section headers (.dynsym's string table); false when they are
 * missing or unusual (cannot tell).
 */
static bool elf_harmless(int fd, const ElfW(Ehdr) * eh)
{
	char buf[2048], tok[64];
	ElfW(Shdr) sh, str;
	uint64_t i, off, left;
	size_t tlen = 0, k;
	bool cut = false, found = false;
	ssize_t n;

	if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(ElfW(Shdr)) ||
	    eh->e_shnum == 0 || eh->e_shnum > MAX_SHNUM)
		return false;
	for (i = 1; i < eh->e_shnum && !found; i++) {
		if (read_shdr(fd, eh, i, &sh) < 0)
			return false;
		found = sh.sh_type == SHT_DYNSYM;
	}
	if (!found || sh.sh_link == 0 || sh.sh_link >= eh->e_shnum ||
	    read_shdr(fd, eh, sh.sh_link, &str) < 0 ||
	    str.sh_type != SHT_STRTAB || str.sh_size == 0 ||
	    str.sh_size > DYNSTR_MAX)
		return false;
	for (off = str.sh_offset, left = str.sh_size; left > 0;) {
		n = read_some(fd, buf, left < sizeof(buf) ? left : sizeof(buf),
			      off);
		if (n <= 0)
			return false;
		for (k = 0; k < (size_t)n; k++) {
			if (buf[k] != '\0') {
				if (tlen + 1 < sizeof(tok))
					tok[tlen++] = buf[k];
				else
					cut = true;
				continue;
			}
			tok[tlen] = '\0';
			if (token_risky(tok, tlen, cut))
				return false;
			tlen = 0;
			cut = false;
		}
		off += (uint64_t)n;
		left -= (uint64_t)n;
	}
	return tlen == 0;
}

bool ps_inspect_harmless(int dirfd, const char *path)
{
	unsigned char head[HEAD_SIZE];
	ElfW(Ehdr) eh;
	bool ok = false;
	ssize_t n;
	int fd;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return false;
	n = read_some(fd, head, sizeof(head), 0);
	if (n >= (ssize_t)sizeof(eh) && memcmp(head, ELFMAG, SELFMAG) == 0 &&
	    head[EI_CLASS] == NATIVE_CLASS && head[EI_DATA] == NATIVE_DATA) {
		memcpy(&eh, head, sizeof(eh));
		ok = (eh.e_type == ET_EXEC || eh.e_type == ET_DYN) &&
		     elf_harmless(fd, &eh);
	}
	close(fd);
	return ok;
}

int ps_inspect_path(int dirfd, const char *path, struct ps_inspect *out)
{
	int fd, rc;

	memset(out, 0, offsetof(struct ps_inspect, loader));
	out->loader[0] = out->interp[0] = out->reason[0] = '\0';
	/* O_NONBLOCK: a FIFO given as a program must not hang us. */
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	rc = ps_inspect_fd(fd, NULL, out);
	close(fd);
	return rc;
}

/* Copies dir (dlen bytes; none = the current directory) + "/" + file. */
static int join(const char *dir, size_t dlen, const char *file, char *out,
		size_t len)
{
	size_t flen = strlen(file);

	if (dlen == 0) {
		dir = ".";
		dlen = 1;
	}
	if (dlen + 1 + flen + 1 > len)
		return -ENAMETOOLONG;
	memcpy(out, dir, dlen);
	out[dlen] = '/';
	memcpy(out + dlen + 1, file, flen + 1);
	return 0;
}

int ps_path_next(const char **cursor, const char *file, char *out, size_t len)
{
	const char *p = *cursor, *colon;

	if (p == NULL)
		return 0;
	colon = strchr(p, ':');
	*cursor = colon != NULL ? colon + 1 : NULL;
	return join(p, colon != NULL ? (size_t)(colon - p) : strlen(p), file,
		    out, len) == 0 ?
		       1 :
		       -ENAMETOOLONG;
}

int ps_inspect_which(const char *file, const char *path_env, char *out,
		     size_t len)
{
	const char *p;
	struct stat st;
	bool denied = false;
	int rc;

	if (file == NULL || file[0] == '\0')
		return -ENOENT;
	if (strchr(file, '/') != NULL) {
		if (strlen(file) + 1 > len)
			return -ENAMETOOLONG;
		memcpy(out, file, strlen(file) + 1);
		return 0;
	}
	/* glibc's execvp uses confstr(_CS_PATH) when PATH is unset. */
	p = path_env != NULL ? path_env : "/bin:/usr/bin";
	while ((rc = ps_path_next(&p, file, out, len)) != 0) {
		if (rc == 1 && stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
			if (faccessat(AT_FDCWD, out, X_OK, AT_EACCESS) == 0)
				return 0;
			denied = true;
		}
	}
	out[0] = '\0';
	return denied ? -EACCES : -ENOENT;
}

const char *ps_inspect_advice(enum ps_inspect_verdict verdict)
{
	switch (verdict) {
	case PS_INSPECT_SETID:
	case PS_INSPECT_FILECAPS:
		/* Under the supervisor, no_new_privs voids set-id bits and
		 * file capabilities: the preload reaches the program. */
		return "Run an unprivileged copy of it, or run it under "
		       "'portshim run --supervise'";
	case PS_INSPECT_FOREIGN:
		return "Run a build of it for this machine or give it free "
		       "ports yourself";
	case PS_INSPECT_MUSL:
	case PS_INSPECT_GO:
	case PS_INSPECT_STATIC:
		return "Run it under 'portshim run --supervise' "
		       "(PORTSHIM_BYPASS=supervise) or give it free ports "
		       "yourself";
	case PS_INSPECT_VISIBLE:
	default:
		return "";
	}
}

size_t ps_inspect_message(const struct ps_inspect *in, const char *prog,
			  enum ps_bypass mode, char *buf, size_t len)
{
	int n = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (in->verdict == PS_INSPECT_VISIBLE || mode == PS_BYPASS_IGNORE)
		return 0;
	if (mode == PS_BYPASS_FAIL)
		n = snprintf(buf, len,
			     "refusing to run %s "
			     "(PORTSHIM_BYPASS=fail): it %s, and portshim "
			     "could not move its ports. %s "
			     "(PORTSHIM_BYPASS=warn runs it anyway)",
			     prog, in->reason, ps_inspect_advice(in->verdict));
	else
		n = snprintf(buf, len,
			     "warning: %s %s: portshim cannot move "
			     "its ports, it binds them as asked. %s "
			     "(PORTSHIM_BYPASS=ignore silences this)",
			     prog, in->reason, ps_inspect_advice(in->verdict));
	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	return (size_t)n < len ? (size_t)n : len - 1;
}
