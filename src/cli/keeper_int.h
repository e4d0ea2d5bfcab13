/* SPDX-License-Identifier: MIT */
/*
 * keeper_int.h - what keeper.c (the keeper's life, and `run`'s side) and
 * keeper_thin.c (the keeper while it shares `run`'s memory) share.
 */
#ifndef PS_KEEPER_INT_H
#define PS_KEEPER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * What the keeper tells `run`, at most once. LINGER: CMD has ended and
 * processes of the group live on (value: `run`'s exit status). ENDED:
 * the group ended with CMD and the thin keeper, which cannot release it,
 * leaves that to `run` (value: the status). FAILED: CMD could not be
 * started (value: ps_cli_spawn's -1 or -2, err: the errno). A keeper
 * that released the group itself sends nothing: `run` sees the channel's
 * end and takes the keeper's exit status. No other hand-over between
 * the two processes: each wakes a sleeping process, which costs more
 * than everything else `run` does.
 */
enum {
	KEEPER_LINGER = 1,
	KEEPER_ENDED = 2,
	KEEPER_FAILED = 3,
};

struct keeper_msg {
	int32_t kind;
	int32_t value;
	int32_t err;
};

/* The hidden command that a thin keeper execs to go on as a whole one. */
#define PS_KEEPER_COMMAND "__keeper"

/*
 * The thin keeper: `run`'s child made with clone(CLONE_VM), which shares
 * `run`'s memory (so no page table is copied and no page is copied on
 * write: a fork costs a millisecond here) and does only raw system calls
 * (rawsys.h), since it shares `run`'s errno and libc's locks too. It
 * starts CMD, waits, passes signals on and tells `run` how CMD ended.
 * Whatever needs more (publishing the mapping for a member, a group that
 * outlives CMD, releasing after `run` is gone) it leaves to a whole
 * keeper: it execs `portshim __keeper` in the same process, whose
 * identity (pid and start time) stays the group's owner.
 *
 * Everything below is set by `run` before the keeper may start and read
 * only afterwards, but exec_err, which the child that starts CMD writes.
 */
struct ps_thin {
	char **argv;	     /* CMD */
	char **paths;	     /* where to look for argv[0], as execvp does */
	char **sh_argv;	     /* "/bin/sh", (the path), argv[1..]: no "#!" */
	char **envp;	     /* CMD's environment */
	char **resume_argv;  /* the whole keeper's: see ps_thin_prepare */
	char **resume_envp;  /* the whole keeper's: no LD_PRELOAD */
	char numbers[5][24]; /* resume_argv[2..6], written by the keeper */
	uint64_t cmd_mask;   /* CMD's signal mask (the kernel's sigset) */
	int chan;	     /* the keeper's end of the channel to `run` */
	int run_chan;	     /* `run`'s end, which the keeper closes */
	int sfd;	     /* signalfd: SIGCHLD and what `run` passes on */
	int sock;	     /* PORTSHIM_KEEPER's socket, or -1 */
	int reg_fd;	     /* the registry handed down to CMD, or -1 */
	pid_t run;
	int no_cmd_err;	       /* errno when paths is empty (ENOENT) */
	volatile int exec_err; /* the starting child's errno */
	char *spawn_stack;     /* top of the starting child's stack */
	char *stack;	       /* top of the keeper's stack */
};

/* True where a thin keeper can run (rawsys.h; not under valgrind, which
 * cannot follow a clone that shares memory without being a thread). */
bool ps_thin_possible(void);

/*
 * Makes the thin keeper's memory, CMD's search list and the whole
 * keeper's arguments: `portshim __keeper RUN CHAN SOCK CMD STATUS`
 * followed by run_argv (`run`'s own, so that ps(1) and pgrep show which
 * run a keeper keeps). NULL on failure (errno set). The memory is never
 * freed: `run` ends soon after, and the keeper may use it after `run`
 * has gone.
 */
struct ps_thin *ps_thin_prepare(char **cmd, char **run_argv);

/* Starts the thin keeper (it waits for a byte on its channel). */
pid_t ps_thin_start(struct ps_thin *t);

/* Sends `run` one message on fd: false if fd < 0 or `run` is gone.
 * Raw: the thin keeper calls it. */
bool ps_keeper_tell(int fd, int kind, int value, int err);

/*
 * Reads the keeper's signals from sfd. `run` passes on to the keeper what
 * it is sent (it does not know CMD's pid: that would be one more
 * hand-over), and the keeper passes it on to CMD while CMD runs (cmd >
 * 0), by the rules of a wrapper (ps_cli_passes_on). A signal that
 * somebody else sent to the keeper (a kill of the whole process group,
 * which reached CMD too) is not passed on. Raw.
 */
void ps_keeper_signals(int sfd, pid_t cmd, pid_t run);

#endif
