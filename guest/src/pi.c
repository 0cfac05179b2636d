/* veggur-pi DIGITS: CPU-bound pi digits with the Rabinowitz-Wagon spigot (O(DIGITS^2) integer work). */
#include "common.h"

/* Spigot digits are final only once a non-9 follows them, so compute GUARD extra digits and drop them. */
#define GUARD 10

static char *out;
static long nout, want;

static void emit(int d, long count)
{
    for (; count > 0; count--)
        if (nout < want)
            out[nout++] = (char)('0' + d);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: veggur-pi DIGITS");
    want = parse_num(argv[1], "DIGITS", 1, 1000000);
    long m = want + GUARD;
    long len = m * 10 / 3 + 1;
    uint32_t *a = malloc((size_t)len * sizeof *a);
    out = malloc((size_t)want + 1);
    if (!a || !out)
        die("out of memory");

    uint64_t t0 = now_ns();
    for (long i = 0; i < len; i++)
        a[i] = 2;
    int predigit = 0;
    long nines = 0;
    for (long j = 0; j < m; j++) {
        /* Multiply the mixed-radix number by 10 and normalise; the carry out of a[0] is the next digit. */
        uint64_t q = 0;
        for (long i = len; i > 0; i--) {
            uint64_t x = 10 * (uint64_t)a[i - 1] + q * (uint64_t)i;
            a[i - 1] = (uint32_t)(x % (uint64_t)(2 * i - 1));
            q = x / (uint64_t)(2 * i - 1);
        }
        a[0] = (uint32_t)(q % 10);
        q /= 10;
        if (q == 9) {
            nines++;                 /* undecided until a non-9 arrives */
        } else if (q == 10) {
            emit(predigit + 1, 1);   /* carry ripples through the held 9s */
            emit(0, nines);
            predigit = 0;
            nines = 0;
        } else {
            if (j > 0)               /* the first predigit is a dummy 0 */
                emit(predigit, 1);
            emit(9, nines);
            predigit = (int)q;
            nines = 0;
        }
    }
    uint64_t t1 = now_ns();
    out[nout] = '\0';
    if (nout != want)
        die("internal error: %ld of %ld digits", nout, want);

    printf("VEGGUR-PI digits=%ld ns=%llu head=%.10s\n", want, (unsigned long long)(t1 - t0), out);
    return 0;
}
