/*
 * veggur-idle NAME [UID] [THREADS]: a process with a known comm (and uid, thread count) that blocks forever.
 *
 * Invariant used by /init to know setup is complete: the main thread's comm becomes NAME *last*, after the uid
 * switch and after every extra thread exists and has named itself NAME too.
 */
#include "common.h"
#include <grp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MAX_THREADS 64

static char name[16];               /* TASK_COMM_LEN: 15 chars + NUL */
static pthread_barrier_t started;

static void set_comm(void)
{
    if (prctl(PR_SET_NAME, name, 0, 0, 0) != 0)
        die("prctl(PR_SET_NAME): %s", strerror(errno));
}

static void *blocker(void *arg)
{
    (void)arg;
    set_comm();                      /* comm is per thread; name each one explicitly */
    pthread_barrier_wait(&started);
    for (;;)
        pause();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4)
        die("usage: veggur-idle NAME [UID] [THREADS]");
    if (strlen(argv[1]) == 0 || strlen(argv[1]) > 15)
        die("NAME must be 1..15 characters: '%s'", argv[1]);
    strcpy(name, argv[1]);

    if (argc >= 3) {
        uid_t uid = (uid_t)parse_num(argv[2], "UID", 0, 65534);
        /* Drop supplementary groups first (needs root), then gid, then uid (after which we can't change gid). */
        if (geteuid() == 0 && setgroups(0, NULL) != 0)
            die("setgroups: %s", strerror(errno));
        if (setgid(uid) != 0 || setuid(uid) != 0)
            die("setgid/setuid(%u): %s", (unsigned)uid, strerror(errno));
    }

    int nthreads = argc >= 4 ? (int)parse_num(argv[3], "THREADS", 0, MAX_THREADS) : 0;
    pthread_barrier_init(&started, NULL, (unsigned)nthreads + 1);
    for (int i = 0; i < nthreads; i++) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, blocker, NULL);
        if (rc != 0)
            die("pthread_create: %s", strerror(rc));
    }
    pthread_barrier_wait(&started);

    set_comm();                      /* last: signals "fully set up" (see top) */
    for (;;)
        pause();
}
