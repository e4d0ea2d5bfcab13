/* SPDX-License-Identifier: MIT */
/*
 * log.h - one-line log messages from the library and the CLI.
 *
 * Every line is formatted into a stack buffer and leaves in a single
 * write(2), so lines from many processes never interleave. No allocation,
 * no stdio: safe in the shim, in a child after fork(), and before init.
 * errno is preserved.
 */
#ifndef PS_LOG_H
#define PS_LOG_H

#include <stdarg.h>

enum ps_log_level {
	PS_LOG_NONE = -1,
	PS_LOG_ERROR = 0,
	PS_LOG_INFO = 1,
	PS_LOG_DEBUG = 2,
};

/* Longest line written; longer messages are truncated and end in "...". */
#define PS_LOG_LINE_MAX 512

/*
 * Sets the level and destination. file == NULL or "" means stderr. A file
 * is opened with O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC for each line, never
 * kept open: host programs that close or dup2 over every descriptor must
 * not make us write into one of their files.
 */
void ps_log_setup(enum ps_log_level level, const char *file);

/* Returns the level set by ps_log_setup (PS_LOG_ERROR before any). */
enum ps_log_level ps_log_level(void);

/*
 * Writes "portshim[PID]: <message>\n" when level <= the configured level.
 * At PS_LOG_DEBUG, " (func)" is appended. Never fails visibly.
 */
void ps_log_write(enum ps_log_level level, const char *func, const char *fmt,
		  ...) __attribute__((format(printf, 3, 4)));
void ps_log_vwrite(enum ps_log_level level, const char *func, const char *fmt,
		   va_list ap) __attribute__((format(printf, 3, 0)));

#define PS_LOG(level, ...)                                            \
	do {                                                          \
		if ((level) <= ps_log_level())                        \
			ps_log_write((level), __func__, __VA_ARGS__); \
	} while (0)

#define PS_ERROR(...) PS_LOG(PS_LOG_ERROR, __VA_ARGS__)
#define PS_INFO(...) PS_LOG(PS_LOG_INFO, __VA_ARGS__)
#define PS_DEBUG(...) PS_LOG(PS_LOG_DEBUG, __VA_ARGS__)

#endif
