/* veggur-getpid N: N raw getpid system calls (syscall(2) bypasses any libc caching), timed. */
#include "common.h"
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: veggur-getpid N");
    long long n = parse_num(argv[1], "N", 1, 1LL << 40);
    long pid = 0;

    uint64_t t0 = now_ns();
    for (long long i = 0; i < n; i++)
        pid = syscall(SYS_getpid);
    uint64_t t1 = now_ns();

    printf("VEGGUR-GETPID pid=%ld calls=%lld ns=%llu\n", pid, n, (unsigned long long)(t1 - t0));
    return 0;
}
