/*
 * veggur-marker: two mlocked anonymous pages whose physical frames the host can find and check.
 *
 *   page A "marker":  512 little-endian u64 words of xorshift64 from a random nonzero seed
 *                     (word i = the (i+1)-th next(); next: x ^= x<<13; x ^= x>>7; x ^= x<<17; return x).
 *   page B "counter": u64 at offset 0, incremented by 1 then sleep 1 ms, forever.
 *
 * PFNs come from /proc/self/pagemap (needs root, otherwise the kernel reports PFN 0).
 * Prints one VEGGUR-MARKER and one VEGGUR-COUNTER line, flushes, then counts forever.
 */
#include "common.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096u
#define PM_PRESENT (1ull << 63)
#define PM_PFN_MASK ((1ull << 55) - 1)

static uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static uint64_t random_seed(void)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open /dev/urandom: %s", strerror(errno));
    uint64_t seed = 0;
    while (seed == 0)                /* xorshift's state must be nonzero */
        if (read(fd, &seed, sizeof seed) != sizeof seed)
            die("read /dev/urandom: %s", strerror(errno));
    close(fd);
    return seed;
}

static uint64_t pfn_of(const void *addr)
{
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open pagemap: %s", strerror(errno));
    uint64_t entry;
    off_t off = (off_t)((uintptr_t)addr / PAGE * sizeof entry);
    if (pread(fd, &entry, sizeof entry, off) != sizeof entry)
        die("read pagemap: %s", strerror(errno));
    close(fd);
    uint64_t pfn = entry & PM_PFN_MASK;
    if (!(entry & PM_PRESENT) || pfn == 0)
        die("page %p not present or PFN hidden (not root?): entry=0x%llx", addr, (unsigned long long)entry);
    return pfn;
}

int main(void)
{
    /* One private anonymous mapping of two pages: two distinct frames (not THP: far below 2 MiB). */
    unsigned char *mem = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    /* mlock faults the pages in and keeps them resident; /init also disables compaction of mlocked pages. */
    if (mlock(mem, 2 * PAGE) != 0)
        die("mlock: %s", strerror(errno));

    uint64_t seed = random_seed(), state = seed;
    uint64_t *marker = (uint64_t *)mem;
    volatile uint64_t *counter = (volatile uint64_t *)(mem + PAGE);
    for (unsigned i = 0; i < PAGE / 8; i++)
        marker[i] = xorshift64(&state);  /* x86-64 is little-endian: memory holds LE words as specified */
    *counter = 0;

    pid_t pid = getpid();
    printf("VEGGUR-MARKER pid=%d pfn=0x%llx seed=0x%llx\n", (int)pid, (unsigned long long)pfn_of(marker),
           (unsigned long long)seed);
    printf("VEGGUR-COUNTER pid=%d pfn=0x%llx\n", (int)pid, (unsigned long long)pfn_of((const void *)counter));
    fflush(stdout);

    const struct timespec ms = {0, 1000000};
    for (;;) {
        (*counter)++;                /* volatile: every increment is a real store the host can observe */
        nanosleep(&ms, NULL);
    }
}
