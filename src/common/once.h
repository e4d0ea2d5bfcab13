/* SPDX-License-Identifier: MIT */
/*
 * once.h - "say it once" across the processes of a run: a file of keys,
 * one per line, that each process reads and appends to under flock(2).
 * `portshim run` creates the file (PORTSHIM_WARNED) and removes it when
 * CMD ends; the exec wrappers use it so that a warning about a program
 * is written once per program and run, not once per process.
 */
#ifndef PS_ONCE_H
#define PS_ONCE_H

/*
 * Claims key in the file at path (which must exist: it is never created
 * here). Returns 1 if key was not there (it is now: say it), 0 if it was
 * (said already), or -errno when the file cannot be used (say it: better
 * twice than never). A key holding a newline cannot be stored: 1. System
 * calls and stack buffers only: safe in a vfork child and a signal
 * handler; errno preserved.
 */
int ps_once_claim(const char *path, const char *key);

#endif
