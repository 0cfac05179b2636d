/*
 * veggur-truth ps|modules TAG: ground truth from the guest's own /proc, bracketed by BEGIN/END lines carrying TAG
 * so a host can match an answer to its request on a shared console.
 *
 *   VEGGUR-PS <pid> <ppid> <uid> <tgid> <comm>     one per /proc/<pid> (thread-group leaders)
 *   VEGGUR-THREAD <tid> <tgid> <comm>              one per non-leader thread in /proc/<pid>/task
 *   VEGGUR-MOD <name> <size>                       one per /proc/modules line
 *
 * comm is /proc/.../comm (task->comm, <= 15 bytes, may contain spaces) minus its newline: the rest of the line.
 * Tasks that vanish while being read are skipped (a line is printed only after all its fields were read).
 */
#include "common.h"
#include <ctype.h>
#include <dirent.h>

/* Read a small /proc file into buf (NUL-terminated). Returns 0, or -1 if it could not be read (task gone). */
static int read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    int err = ferror(f);
    fclose(f);
    if (err || n == 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static int read_comm(const char *path, char *comm, size_t size)
{
    if (read_small(path, comm, size) != 0)
        return -1;
    comm[strcspn(comm, "\n")] = '\0';
    return 0;
}

/* Value of "Key:\t<num>" in a status buffer (first number only, e.g. the real uid of "Uid:"). */
static int status_field(const char *status, const char *key, long *out)
{
    size_t klen = strlen(key);
    for (const char *p = status; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            char *end;
            *out = strtol(p + klen + 1, &end, 10);
            return end == p + klen + 1 ? -1 : 0;
        }
    }
    return -1;
}

/* A /proc or task directory entry that names a task: all digits. Returns the id, or -1. */
static long task_id(const char *s)
{
    if (!*s || strlen(s) > 9)
        return -1;
    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c))
            return -1;
    return strtol(s, NULL, 10);
}

static void list_threads(long pid, long tgid)
{
    char path[64], comm[64];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return;                      /* process exited meanwhile */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long tid = task_id(e->d_name);
        if (tid < 0 || tid == tgid)
            continue;                /* the main thread is already the VEGGUR-PS line */
        snprintf(path, sizeof path, "/proc/%ld/task/%ld/comm", pid, tid);
        if (read_comm(path, comm, sizeof comm) == 0)
            printf("VEGGUR-THREAD %ld %ld %s\n", tid, tgid, comm);
    }
    closedir(d);
}

static void ps(const char *tag)
{
    DIR *d = opendir("/proc");
    if (!d)
        die("opendir /proc: %s", strerror(errno));
    printf("VEGGUR-PS-BEGIN %s\n", tag);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = task_id(e->d_name);
        if (pid < 0)
            continue;
        char path[64], status[8192], comm[64];
        long ppid, uid, tgid;
        snprintf(path, sizeof path, "/proc/%ld/status", pid);
        if (read_small(path, status, sizeof status) != 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        if (read_comm(path, comm, sizeof comm) != 0)
            continue;
        if (status_field(status, "PPid", &ppid) || status_field(status, "Uid", &uid) ||
            status_field(status, "Tgid", &tgid))
            continue;
        printf("VEGGUR-PS %ld %ld %ld %ld %s\n", pid, ppid, uid, tgid, comm);
        list_threads(pid, tgid);
    }
    closedir(d);
    printf("VEGGUR-PS-END %s\n", tag);
}

static void modules(const char *tag)
{
    FILE *f = fopen("/proc/modules", "re");
    if (!f)
        die("open /proc/modules: %s", strerror(errno));
    printf("VEGGUR-MOD-BEGIN %s\n", tag);
    char line[4096], name[256];
    unsigned long size;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%255s %lu", name, &size) == 2)
            printf("VEGGUR-MOD %s %lu\n", name, size);
    fclose(f);
    printf("VEGGUR-MOD-END %s\n", tag);
}

int main(int argc, char **argv)
{
    if (argc != 3 || strchr(argv[2], ' ') || !*argv[2])
        die("usage: veggur-truth ps|modules TAG (TAG without spaces)");
    /* Fully buffered: the answer leaves in few large writes instead of one console write per line. */
    static char buf[1 << 16];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    if (strcmp(argv[1], "ps") == 0)
        ps(argv[2]);
    else if (strcmp(argv[1], "modules") == 0)
        modules(argv[2]);
    else
        die("unknown mode '%s' (want ps or modules)", argv[1]);
    return fflush(stdout) == 0 ? 0 : 1;
}
