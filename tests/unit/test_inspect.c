/* SPDX-License-Identifier: MIT */
/*
 * test_inspect.c - what ps_inspect says about real executables built
 * here: a dynamic and a static C program, programs carrying the Go
 * toolchain's section or note (from a section attribute and from
 * objcopy), edited copies (another ELF class, another machine, musl's
 * loader, no section headers, truncated, randomly damaged), scripts,
 * set-id copies and file capabilities judged for other credentials, and
 * the PATH search of ps_inspect_which.
 *
 * The programs are compiled once by the group setup with the C compiler
 * named by $CC (default "cc"). Without a static C library the static
 * cases are skipped; without root, the file-capability case is.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "inspect.h"

#define FUZZ_ROUNDS 300
/* Path buffers: the programs' paths are short (under /tmp), and the
 * derived ones are longer, so that no snprintf can truncate. */
#define SHORT 200
#define LONG 512

static const char hello_c[] = "#include <stdio.h>\n"
			      "int main(void) { puts(\"hello\"); return 0; }\n";

/* The section the Go linker writes, made by a section attribute. */
static const char gosect_c[] =
	"#include <stdio.h>\n"
	"__attribute__((section(\".go.buildinfo\"), used))\n"
	"static const char buildinfo[32] = \"\\xff Go buildinf:\";\n"
	"int main(void) { puts(\"go-like\"); return 0; }\n";

/* A Go build-id note: name "Go\0\0" (namesz 4), type 4. The assembler
 * makes ".note*" sections SHT_NOTE, and the linker a PT_NOTE of them. */
static const char gonote_c[] =
	"#include <stdio.h>\n"
	"struct note { unsigned namesz, descsz, type; char name[4];\n"
	"              char desc[8]; };\n"
	"__attribute__((section(\".note.go.buildid\"), used, aligned(4)))\n"
	"static const struct note id = { 4, 8, 4, \"Go\", \"abcdefgh\" };\n"
	"int main(void) { puts(\"go-note\"); return 0; }\n";

struct progs {
	char dir[64];
	char dyn[SHORT];
	char stat[SHORT]; /* "" if no static libc */
	char gosect[SHORT];
	char gonote[SHORT];
	char gocopy[SHORT]; /* dyn + objcopy --add-section */
};

static struct progs P;

/* Runs argv; returns its exit status, or -1. Output goes to /dev/null. */
static int run(char *const argv[])
{
	pid_t pid;
	int st, fd;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void write_file(const char *path, const void *data, size_t len,
		       mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_return_code(fd, errno);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_return_code(fchmod(fd, mode), errno);
	assert_return_code(close(fd), errno);
}

/* Reads a whole (small) file into a malloc'd buffer. */
static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	assert_return_code(fd, errno);
	assert_return_code(fstat(fd, &st), errno);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	size_t len;
	unsigned char *buf = read_file(from, &len);

	unlink(to);
	write_file(to, buf, len, mode);
	free(buf);
}

/* Compiles source into out with extra flags (may be NULL). */
static int compile(const char *src_text, const char *name, const char *flag,
		   char *out)
{
	char src[SHORT];
	const char *cc = getenv("CC");
	char *argv[8];
	int i = 0;

	snprintf(src, sizeof(src), "%s/%s.c", P.dir, name);
	snprintf(out, SHORT, "%s/%s", P.dir, name);
	write_file(src, src_text, strlen(src_text), 0644);
	argv[i++] = (char *)(cc != NULL && *cc != '\0' ? cc : "cc");
	if (flag != NULL)
		argv[i++] = (char *)flag;
	argv[i++] = "-o";
	argv[i++] = out;
	argv[i++] = src;
	argv[i] = NULL;
	return run(argv);
}

static int setup_group(void **state)
{
	char data[SHORT], arg[LONG];
	char *objcopy[] = { "objcopy", "--add-section", arg,
			    P.dyn,     P.gocopy,	NULL };

	strcpy(P.dir, "/tmp/ps-test-inspect.XXXXXX");
	if (mkdtemp(P.dir) == NULL)
		return -1;
	if (compile(hello_c, "dyn", NULL, P.dyn) != 0 ||
	    compile(gosect_c, "gosect", NULL, P.gosect) != 0 ||
	    compile(gonote_c, "gonote", NULL, P.gonote) != 0) {
		fprintf(stderr, "cannot compile the test programs with cc\n");
		return -1;
	}
	if (compile(hello_c, "static", "-static", P.stat) != 0)
		P.stat[0] = '\0';
	snprintf(data, sizeof(data), "%s/buildinfo.bin", P.dir);
	write_file(data, "\xff Go buildinf:", 14, 0644);
	snprintf(arg, sizeof(arg), ".go.buildinfo=%s", data);
	snprintf(P.gocopy, sizeof(P.gocopy), "%s/gocopy", P.dir);
	if (run(objcopy) != 0) {
		fprintf(stderr, "objcopy --add-section failed\n");
		return -1;
	}
	return 0;
}

static int teardown_group(void **state)
{
	char *rm[] = { "rm", "-rf", P.dir, NULL };

	return run(rm) == 0 ? 0 : -1;
}

/* The caller's credentials, or a stranger's (another uid and gid). */
static struct ps_inspect_creds creds(bool stranger)
{
	struct ps_inspect_creds cr;

	assert_int_equal(ps_inspect_creds_self(&cr), 0);
	if (stranger) {
		cr.uid += 4242;
		cr.gid += 4242;
	}
	return cr;
}

static void inspect_as(const char *path, const struct ps_inspect_creds *cr,
		       struct ps_inspect *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_return_code(fd, errno);
	assert_int_equal(ps_inspect_fd(fd, cr, out), 0);
	close(fd);
}

static void inspect(const char *path, struct ps_inspect *out)
{
	assert_int_equal(ps_inspect_path(AT_FDCWD, path, out), 0);
}

/* ------------------------------------------------------------ verdicts */

static void test_inspect_dynamic_is_visible(void **state)
{
	struct ps_inspect in;

	inspect(P.dyn, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	assert_true(in.flags & PS_INSPECT_F_ELF);
	assert_true(in.flags & PS_INSPECT_F_DYNAMIC);
	assert_false(in.flags & (PS_INSPECT_F_GO | PS_INSPECT_F_SETUID |
				 PS_INSPECT_F_FOREIGN | PS_INSPECT_F_SCRIPT));
	assert_non_null(strstr(in.loader, "ld-linux"));
	assert_string_equal(in.reason, "");
}

static void test_inspect_static(void **state)
{
	struct ps_inspect in;

	if (P.stat[0] == '\0')
		skip();
	inspect(P.stat, &in);
	assert_int_equal(in.verdict, PS_INSPECT_STATIC);
	assert_true(in.flags & PS_INSPECT_F_ELF);
	assert_false(in.flags & PS_INSPECT_F_DYNAMIC);
	assert_string_equal(in.loader, "");
	assert_non_null(strstr(in.reason, "statically linked"));
}

static void test_inspect_go_section(void **state)
{
	struct ps_inspect in;

	inspect(P.gosect, &in);
	assert_int_equal(in.verdict, PS_INSPECT_GO);
	assert_true(in.flags & PS_INSPECT_F_DYNAMIC);
	assert_non_null(strstr(in.reason, "Go program"));
}

static void test_inspect_go_section_objcopy(void **state)
{
	struct ps_inspect in;

	inspect(P.gocopy, &in);
	assert_int_equal(in.verdict, PS_INSPECT_GO);
}

/*
 * A copy of path with its section headers gone (e_shoff, e_shnum and
 * e_shstrndx zeroed), as an executable may legally be: only the program
 * headers remain.
 */
static void strip_section_headers(const char *path, const char *out)
{
	size_t len;
	unsigned char *buf = read_file(path, &len);
	ElfW(Ehdr) eh;

	memcpy(&eh, buf, sizeof(eh));
	eh.e_shoff = 0;
	eh.e_shnum = 0;
	eh.e_shstrndx = 0;
	memcpy(buf, &eh, sizeof(eh));
	unlink(out);
	write_file(out, buf, len, 0755);
	free(buf);
}

static void test_inspect_go_note_without_sections(void **state)
{
	char path[SHORT];
	struct ps_inspect in;

	/* With sections: found by name (or by the note, either way). */
	inspect(P.gonote, &in);
	assert_int_equal(in.verdict, PS_INSPECT_GO);

	/* Without: only the PT_NOTE segment tells. */
	snprintf(path, sizeof(path), "%s/gonote-nosh", P.dir);
	strip_section_headers(P.gonote, path);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_GO);

	/* And a C program without sections is still just visible. */
	snprintf(path, sizeof(path), "%s/dyn-nosh", P.dir);
	strip_section_headers(P.dyn, path);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	assert_true(in.flags & PS_INSPECT_F_DYNAMIC);
}

/* A copy of dyn with bytes at off replaced. */
static void patched_copy(const char *out, size_t off, const void *bytes,
			 size_t n)
{
	size_t len;
	unsigned char *buf = read_file(P.dyn, &len);

	assert_true(off + n <= len);
	memcpy(buf + off, bytes, n);
	unlink(out);
	write_file(out, buf, len, 0755);
	free(buf);
}

static void test_inspect_foreign_class_and_machine(void **state)
{
	char path[SHORT];
	struct ps_inspect in;
	unsigned char cls = ELFCLASS32;
	uint16_t machine = EM_AARCH64 == EM_X86_64 ? EM_RISCV : EM_AARCH64;

	snprintf(path, sizeof(path), "%s/class32", P.dir);
	patched_copy(path, EI_CLASS, &cls, 1);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_FOREIGN);
	assert_non_null(strstr(in.reason, "32-bit program"));

#if defined(__x86_64__) || defined(__aarch64__)
	snprintf(path, sizeof(path), "%s/othermachine", P.dir);
	patched_copy(path, offsetof(ElfW(Ehdr), e_machine), &machine,
		     sizeof(machine));
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_FOREIGN);
	assert_non_null(strstr(in.reason, "another machine"));
#else
	(void)machine;
#endif
}

static void test_inspect_musl_loader(void **state)
{
	static const char musl[] = "/lib/ld-musl-x86_64.so.1";
	char path[SHORT];
	struct ps_inspect in;
	size_t len, i, n;
	unsigned char *buf = read_file(P.dyn, &len);

	/* Overwrite the PT_INTERP string (found by its text) in place. */
	inspect(P.dyn, &in);
	n = strlen(in.loader);
	assert_true(n >= sizeof(musl));
	for (i = 0; i + n <= len; i++)
		if (memcmp(buf + i, in.loader, n) == 0)
			break;
	assert_true(i + n <= len);
	free(buf);
	snprintf(path, sizeof(path), "%s/musl", P.dir);
	patched_copy(path, i, musl, sizeof(musl));
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_MUSL);
	assert_string_equal(in.loader, musl);
	assert_non_null(strstr(in.reason, musl));
}

static void test_inspect_not_elf_or_broken(void **state)
{
	char path[SHORT];
	struct ps_inspect in;
	size_t len;
	unsigned char *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/text", P.dir);
	write_file(path, "just text\n", 10, 0755);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	assert_false(in.flags & PS_INSPECT_F_ELF);

	/* Truncated inside the program headers: not something exec runs. */
	buf = read_file(P.dyn, &len);
	snprintf(path, sizeof(path), "%s/truncated", P.dir);
	write_file(path, buf, 100, 0755);
	free(buf);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	snprintf(path, sizeof(path), "%s/empty", P.dir);
	write_file(path, "", 0, 0755);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	/* A directory, and a missing file. */
	inspect(P.dir, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	snprintf(path, sizeof(path), "%s/missing", P.dir);
	assert_int_equal(ps_inspect_path(AT_FDCWD, path, &in), -ENOENT);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	/* A FIFO must not block. */
	snprintf(path, sizeof(path), "%s/fifo", P.dir);
	assert_return_code(mkfifo(path, 0755), errno);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	/* Relative to a directory descriptor. */
	fd = open(P.dir, O_RDONLY | O_DIRECTORY);
	assert_return_code(fd, errno);
	assert_int_equal(ps_inspect_path(fd, "gosect", &in), 0);
	assert_int_equal(in.verdict, PS_INSPECT_GO);
	close(fd);
}

/*
 * Random damage to the headers of a Go-like program: whatever the file
 * says, inspection terminates with a valid verdict (run under valgrind
 * and ASan by the test script, this also checks every read is in bounds).
 */
static void test_inspect_damaged_headers(void **state)
{
	char path[SHORT];
	struct ps_inspect in;
	size_t len, region;
	unsigned char *orig = read_file(P.gonote, &len);
	unsigned char *buf = malloc(len);
	int round, k;

	assert_non_null(buf);
	srand(4242);
	snprintf(path, sizeof(path), "%s/damaged", P.dir);
	/* The ELF header and the program headers that follow it. */
	region = len < 1024 ? len : 1024;
	for (round = 0; round < FUZZ_ROUNDS; round++) {
		memcpy(buf, orig, len);
		for (k = 0; k < 1 + rand() % 8; k++)
			buf[(size_t)rand() % region] = (unsigned char)rand();
		unlink(path);
		write_file(path, buf, len, 0755);
		inspect(path, &in);
		assert_true(in.verdict >= PS_INSPECT_VISIBLE &&
			    in.verdict <= PS_INSPECT_STATIC);
		assert_true(strlen(in.reason) < sizeof(in.reason));
	}
	free(buf);
	free(orig);
}

/* -------------------------------------------------------------- scripts */

static void test_inspect_scripts(void **state)
{
	char path[SHORT], text[LONG], inner[SHORT];
	struct ps_inspect in;

	/* A script for a Go-like interpreter is judged by it. */
	snprintf(path, sizeof(path), "%s/go-script", P.dir);
	snprintf(text, sizeof(text), "#! %s -x\necho\n", P.gosect);
	write_file(path, text, strlen(text), 0755);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_GO);
	assert_true(in.flags & PS_INSPECT_F_SCRIPT);
	assert_string_equal(in.interp, P.gosect);
	snprintf(text, sizeof(text), "runs under %s, which is a Go program",
		 P.gosect);
	assert_memory_equal(in.reason, text, strlen(text));

	/* A script for a dynamic interpreter is visible. */
	snprintf(text, sizeof(text), "#!%s\n", P.dyn);
	write_file(path, text, strlen(text), 0755);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	assert_true(in.flags & PS_INSPECT_F_SCRIPT);
	assert_true(in.flags & PS_INSPECT_F_DYNAMIC);

	/* One level only: a script whose interpreter is a script. */
	snprintf(inner, sizeof(inner), "%s/inner-script", P.dir);
	snprintf(text, sizeof(text), "#!%s\n", P.gosect);
	write_file(inner, text, strlen(text), 0755);
	snprintf(text, sizeof(text), "#!%s\n", inner);
	write_file(path, text, strlen(text), 0755);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	/* Missing interpreter, empty "#!", unterminated line. */
	write_file(path, "#!/nonexistent/sh\n", 18, 0755);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	write_file(path, "#!\n", 3, 0755);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	write_file(path, "#!/bin/sh", 9, 0755);
	inspect(path, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	/* The set-id bits of a script itself are ignored by Linux. */
	snprintf(text, sizeof(text), "#!%s\n", P.dyn);
	write_file(path, text, strlen(text), 04755);
	{
		struct ps_inspect_creds cr = creds(true);

		inspect_as(path, &cr, &in);
		assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	}
}

/* ------------------------------------------------------------ privileges */

static void test_inspect_setuid_setgid(void **state)
{
	char path[SHORT];
	struct ps_inspect_creds me = creds(false), other = creds(true);
	struct stat st;
	struct ps_inspect in;

	snprintf(path, sizeof(path), "%s/suid", P.dir);
	copy_file(P.dyn, path, 04755);
	assert_return_code(stat(path, &st), errno);
	assert_true(st.st_mode & S_ISUID);

	/* Owned by the caller: the euid does not change, the loader is
	 * not in secure mode. */
	inspect_as(path, &me, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	/* Run by someone else: it is. */
	inspect_as(path, &other, &in);
	assert_int_equal(in.verdict, PS_INSPECT_SETID);
	assert_true(in.flags & PS_INSPECT_F_SETUID);
	assert_int_equal(in.setid_owner, st.st_uid);
	assert_non_null(strstr(in.reason, "is setuid"));
	assert_non_null(strstr(in.reason, "ignores LD_PRELOAD"));

	/* no_new_privs makes the kernel ignore the bit. */
	other.no_new_privs = true;
	inspect_as(path, &other, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	other.no_new_privs = false;

	/* setgid, with and without group execute permission (without, the
	 * bit means mandatory locking). */
	copy_file(P.dyn, path, 02755);
	inspect_as(path, &other, &in);
	assert_int_equal(in.verdict, PS_INSPECT_SETID);
	assert_true(in.flags & PS_INSPECT_F_SETGID);
	assert_non_null(strstr(in.reason, "is setgid"));
	copy_file(P.dyn, path, 02745);
	inspect_as(path, &other, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	/* setuid beats Go and static in the verdict's order. */
	copy_file(P.gosect, path, 04755);
	inspect_as(path, &other, &in);
	assert_int_equal(in.verdict, PS_INSPECT_SETID);
	assert_true(in.flags & PS_INSPECT_F_GO);
}

static void test_inspect_file_capabilities(void **state)
{
	char path[SHORT];
	struct ps_inspect_creds me = creds(false), other = creds(true);
	struct vfs_cap_data caps;
	struct ps_inspect in;

	snprintf(path, sizeof(path), "%s/fcaps", P.dir);
	copy_file(P.dyn, path, 0755);
	memset(&caps, 0, sizeof(caps));
	caps.magic_etc = htole32(VFS_CAP_REVISION_2);
	caps.data[0].permitted = htole32(1u << CAP_NET_BIND_SERVICE);
	if (setxattr(path, "security.capability", &caps, XATTR_CAPS_SZ_2, 0) <
	    0) {
		if (errno == EPERM || errno == ENOTSUP)
			skip();
		fail_msg("setxattr: %s", strerror(errno));
	}
	/* A non-root caller gains a permitted capability: secure mode. */
	me.uid = other.uid = 1000 + 4242;
	inspect_as(path, &other, &in);
	assert_int_equal(in.verdict, PS_INSPECT_FILECAPS);
	assert_non_null(strstr(in.reason, "file capabilities"));

	/* Root gains nothing. */
	other.uid = 0;
	inspect_as(path, &other, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);

	/* Only inheritable, and the caller has none of them: nothing is
	 * gained; the effective bit alone is enough. */
	caps.data[0].permitted = 0;
	caps.data[0].inheritable = htole32(1u << CAP_NET_BIND_SERVICE);
	assert_return_code(setxattr(path, "security.capability", &caps,
				    XATTR_CAPS_SZ_2, 0),
			   errno);
	me.cap_inheritable = 0;
	inspect_as(path, &me, &in);
	assert_int_equal(in.verdict, PS_INSPECT_VISIBLE);
	me.cap_inheritable = 1u << CAP_NET_BIND_SERVICE;
	inspect_as(path, &me, &in);
	assert_int_equal(in.verdict, PS_INSPECT_FILECAPS);
	caps.magic_etc = htole32(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE);
	caps.data[0].inheritable = 0;
	assert_return_code(setxattr(path, "security.capability", &caps,
				    XATTR_CAPS_SZ_2, 0),
			   errno);
	me.cap_inheritable = 0;
	inspect_as(path, &me, &in);
	assert_int_equal(in.verdict, PS_INSPECT_FILECAPS);
}

/* ------------------------------------------------------------ PATH search */

/* The walk over PATH that ps_inspect_which and the keeper share. */
static void test_path_next(void **state)
{
	const char *p = "/a::/b/c:";
	char out[16], tiny[8];
	const char *q = "/long/folder:/x";

	(void)state;
	assert_int_equal(ps_path_next(&p, "tool", out, sizeof(out)), 1);
	assert_string_equal(out, "/a/tool");
	assert_int_equal(ps_path_next(&p, "tool", out, sizeof(out)), 1);
	assert_string_equal(out, "./tool"); /* empty: the current folder */
	assert_int_equal(ps_path_next(&p, "tool", out, sizeof(out)), 1);
	assert_string_equal(out, "/b/c/tool");
	assert_int_equal(ps_path_next(&p, "tool", out, sizeof(out)), 1);
	assert_string_equal(out, "./tool"); /* the trailing empty entry */
	assert_int_equal(ps_path_next(&p, "tool", out, sizeof(out)), 0);
	assert_int_equal(ps_path_next(&p, "tool", out, sizeof(out)), 0);
	/* Too long for out: said, and the walk goes on. */
	assert_int_equal(ps_path_next(&q, "t", tiny, sizeof(tiny)),
			 -ENAMETOOLONG);
	assert_int_equal(ps_path_next(&q, "t", tiny, sizeof(tiny)), 1);
	assert_string_equal(tiny, "/x/t");
}

static void test_inspect_which(void **state)
{
	char a[SHORT], b[SHORT], f[LONG], env[LONG];
	char out[LONG], cwd[PATH_MAX];

	snprintf(a, sizeof(a), "%s/path-a", P.dir);
	snprintf(b, sizeof(b), "%s/path-b", P.dir);
	assert_return_code(mkdir(a, 0755), errno);
	assert_return_code(mkdir(b, 0755), errno);
	/* a/tool exists without execute permission; b/tool with. A
	 * directory named like the command never counts. */
	snprintf(f, sizeof(f), "%s/tool", a);
	write_file(f, "x", 1, 0644);
	snprintf(f, sizeof(f), "%s/tool", b);
	write_file(f, "x", 1, 0755);
	snprintf(f, sizeof(f), "%s/dir", a);
	assert_return_code(mkdir(f, 0755), errno);

	snprintf(env, sizeof(env), "%s:%s", a, b);
	assert_int_equal(ps_inspect_which("tool", env, out, sizeof(out)), 0);
	snprintf(f, sizeof(f), "%s/tool", b);
	assert_string_equal(out, f);

	/* Only a non-executable one: EACCES, as execvp reports. Running
	 * as root, faccessat(X_OK) still needs one execute bit. */
	assert_int_equal(ps_inspect_which("tool", a, out, sizeof(out)),
			 -EACCES);
	assert_int_equal(ps_inspect_which("dir", a, out, sizeof(out)), -ENOENT);
	assert_int_equal(ps_inspect_which("nothing", env, out, sizeof(out)),
			 -ENOENT);
	assert_int_equal(ps_inspect_which("", env, out, sizeof(out)), -ENOENT);

	/* A name with a slash is taken as is. */
	assert_int_equal(ps_inspect_which("./x/y", env, out, sizeof(out)), 0);
	assert_string_equal(out, "./x/y");

	/* An empty entry is the current directory. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_return_code(chdir(b), errno);
	snprintf(env, sizeof(env), "%s::/nonexistent", a);
	assert_int_equal(ps_inspect_which("tool", env, out, sizeof(out)), 0);
	assert_string_equal(out, "./tool");
	assert_return_code(chdir(cwd), errno);

	/* No PATH: glibc's default, which has sh. */
	assert_int_equal(ps_inspect_which("sh", NULL, out, sizeof(out)), 0);
	assert_true(strcmp(out, "/bin/sh") == 0 ||
		    strcmp(out, "/usr/bin/sh") == 0);

	/* Too long for the buffer: a candidate is skipped, a name with a
	 * slash refused. */
	assert_int_equal(ps_inspect_which("tool", b, out, 8), -ENOENT);
	assert_int_equal(ps_inspect_which("./abcdefgh", b, out, 8),
			 -ENAMETOOLONG);
}

/* ------------------------------------------------------------- messages */

static void test_inspect_messages(void **state)
{
	struct ps_inspect in;
	char buf[PS_LOG_LINE_MAX], warn[PS_LOG_LINE_MAX];
	size_t n;

	inspect(P.gosect, &in);
	n = ps_inspect_message(&in, "./srv", PS_BYPASS_WARN, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_non_null(strstr(buf, "warning: ./srv is a Go program"));
	assert_non_null(strstr(buf, "PORTSHIM_BYPASS=ignore"));
	assert_non_null(strstr(buf, ps_inspect_advice(PS_INSPECT_GO)));
	assert_null(strchr(buf, '\n'));

	ps_inspect_message(&in, "./srv", PS_BYPASS_FAIL, buf, sizeof(buf));
	assert_non_null(strstr(buf, "refusing to run ./srv "
				    "(PORTSHIM_BYPASS=fail): it is a Go"));
	assert_non_null(strstr(buf, "PORTSHIM_BYPASS=fail"));

	/* supervise reads as warn: the message is for a program that no
	 * supervisor watches, and the advice names the way to one. */
	ps_inspect_message(&in, "./srv", PS_BYPASS_SUPERVISE, buf, sizeof(buf));
	ps_inspect_message(&in, "./srv", PS_BYPASS_WARN, warn, sizeof(warn));
	assert_string_equal(buf, warn);
	assert_non_null(strstr(buf, "portshim run --supervise"));

	assert_int_equal(ps_inspect_message(&in, "./srv", PS_BYPASS_IGNORE, buf,
					    sizeof(buf)),
			 0);
	assert_string_equal(buf, "");

	inspect(P.dyn, &in);
	assert_int_equal(ps_inspect_message(&in, "./srv", PS_BYPASS_WARN, buf,
					    sizeof(buf)),
			 0);
	assert_string_equal(buf, "");

	/* Truncation keeps a terminated string. */
	inspect(P.gosect, &in);
	n = ps_inspect_message(&in, "./srv", PS_BYPASS_WARN, buf, 20);
	assert_int_equal(n, 19);
	assert_int_equal(strlen(buf), 19);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inspect_dynamic_is_visible),
		cmocka_unit_test(test_inspect_static),
		cmocka_unit_test(test_inspect_go_section),
		cmocka_unit_test(test_inspect_go_section_objcopy),
		cmocka_unit_test(test_inspect_go_note_without_sections),
		cmocka_unit_test(test_inspect_foreign_class_and_machine),
		cmocka_unit_test(test_inspect_musl_loader),
		cmocka_unit_test(test_inspect_not_elf_or_broken),
		cmocka_unit_test(test_inspect_damaged_headers),
		cmocka_unit_test(test_inspect_scripts),
		cmocka_unit_test(test_inspect_setuid_setgid),
		cmocka_unit_test(test_inspect_file_capabilities),
		cmocka_unit_test(test_path_next),
		cmocka_unit_test(test_inspect_which),
		cmocka_unit_test(test_inspect_messages),
	};

	return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
