/*
 * veggur-getpid N [DELAY_MS]: N raw getpid system calls (syscall(2) bypasses any libc caching), timed. With DELAY_MS,
 * it first announces itself and sleeps, so a tracer can attach to this very process before the first call.
 * It prints what the last call returned: a tracer that changes getpid's return value shows up here.
 */
#include "common.h"
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3)
        die("usage: veggur-getpid N [DELAY_MS]");
    long long n = parse_num(argv[1], "N", 1, 1LL << 40);
    if (argc == 3) {
        long long delay = parse_num(argv[2], "DELAY_MS", 0, 3600 * 1000);
        /* gettid, not getpid: the announcement must not count as a call (a main thread's tid is its pid) */
        printf("VEGGUR-GETPID-START pid=%ld calls=%lld\n", syscall(SYS_gettid), n);
        fflush(stdout);
        struct timespec pause = { delay / 1000, (delay % 1000) * 1000000 };
        nanosleep(&pause, NULL);
    }
    long pid = 0;

    uint64_t t0 = now_ns();
    for (long long i = 0; i < n; i++)
        pid = syscall(SYS_getpid);
    uint64_t t1 = now_ns();

    printf("VEGGUR-GETPID pid=%ld calls=%lld ns=%llu\n", pid, n, (unsigned long long)(t1 - t0));
    return 0;
}
