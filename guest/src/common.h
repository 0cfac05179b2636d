/* Shared helpers for the Veggur guest workloads (all built with gcc -static). */
#ifndef VEGGUR_COMMON_H
#define VEGGUR_COMMON_H

#define _GNU_SOURCE /* program_invocation_short_name, pthread/prctl extras */

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Errors go to stderr as one line "VEGGUR-ERROR <prog>: <text>" so a host reading the console can fail fast.
 * The line is written with a single write(2) so it does not interleave with other console writers. */
static inline __attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "VEGGUR-ERROR %s: ", program_invocation_short_name);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fflush(stdout);
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        _exit(1);
    exit(1);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Strict decimal parse: the whole string must be a number in [min, max]. */
static inline long long parse_num(const char *s, const char *what, long long min, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        die("bad %s '%s' (want %lld..%lld)", what, s, min, max);
    return v;
}

#endif
