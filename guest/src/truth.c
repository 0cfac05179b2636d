/*
 * veggur-truth ps|modules|kallsyms-count TAG, veggur-truth kallsyms TAG NAME...: ground truth from the guest's own
 * /proc, bracketed by BEGIN/END lines carrying TAG so a host can match an answer to its request on a shared console.
 *
 *   VEGGUR-PS <pid> <ppid> <uid> <tgid> <comm>     one per /proc/<pid> (thread-group leaders)
 *   VEGGUR-THREAD <tid> <tgid> <comm>              one per non-leader thread in /proc/<pid>/task
 *   VEGGUR-MOD <name> <size>                       one per /proc/modules line
 *   VEGGUR-KSYM <hexaddr> <type> <name>            per NAME, its first core-kernel line in /proc/kallsyms (none if
 *                                                  the kernel has no such symbol)
 *   VEGGUR-KSYM-COUNT <n>                          number of core-kernel lines in /proc/kallsyms
 *
 * Core-kernel lines of /proc/kallsyms are those without a "\t[module]" suffix (modules, bpf, ftrace and kprobe
 * trampolines have one). As root the addresses are real unless kptr_restrict is 2; an all-zero listing is an error.
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

/* One parsed core-kernel line of /proc/kallsyms; returns 0 at the end of the file. Module lines are skipped. */
static int next_core_symbol(FILE *f, unsigned long long *address, char *type, char *name, size_t name_size)
{
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *end;
        if (!strchr(line, '\n')) {          /* longer than any symbol line: skip the rest of it */
            int c;
            while ((c = getc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        if (strchr(line, '\t'))
            continue;                        /* a module's (or bpf, ftrace, kprobe) symbol */
        line[strcspn(line, "\n")] = '\0';
        *address = strtoull(line, &end, 16);
        if (end == line || end[0] != ' ' || !end[1] || end[2] != ' ' || strlen(end + 3) >= name_size)
            continue;
        *type = end[1];
        strcpy(name, end + 3);
        return 1;
    }
    return 0;
}

static void kallsyms(const char *tag, char **names, int count, int only_count)
{
    FILE *f = fopen("/proc/kallsyms", "re");
    if (!f)
        die("open /proc/kallsyms: %s", strerror(errno));
    unsigned long long *addresses = calloc((size_t)count + 1, sizeof *addresses);
    char *types = calloc((size_t)count + 1, 1);
    if (!addresses || !types)
        die("out of memory");
    unsigned long long address, lines = 0;
    int shown = 0;
    char type, name[1024];
    while (next_core_symbol(f, &address, &type, name, sizeof name)) {
        lines++;
        shown |= address != 0;
        for (int i = 0; i < count; i++)
            if (!types[i] && strcmp(name, names[i]) == 0) {
                addresses[i] = address;
                types[i] = type;
            }
    }
    if (ferror(f))
        die("read /proc/kallsyms: %s", strerror(errno));
    fclose(f);
    if (!shown)
        die("/proc/kallsyms shows no addresses (kptr_restrict?)");
    printf("VEGGUR-KSYM-BEGIN %s\n", tag);
    if (only_count)
        printf("VEGGUR-KSYM-COUNT %llu\n", lines);
    for (int i = 0; i < count; i++)
        if (types[i])
            printf("VEGGUR-KSYM %016llx %c %s\n", addresses[i], types[i], names[i]);
    printf("VEGGUR-KSYM-END %s\n", tag);
    free(addresses);
    free(types);
}

int main(int argc, char **argv)
{
    int with_names = argc >= 2 && strcmp(argv[1], "kallsyms") == 0;
    if (argc < 3 || (argc != 3 && !with_names) || strchr(argv[2], ' ') || !*argv[2])
        die("usage: veggur-truth ps|modules|kallsyms-count TAG, or veggur-truth kallsyms TAG NAME... "
            "(TAG without spaces)");
    /* Fully buffered: the answer leaves in few large writes instead of one console write per line. */
    static char buf[1 << 16];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    if (strcmp(argv[1], "ps") == 0)
        ps(argv[2]);
    else if (strcmp(argv[1], "modules") == 0)
        modules(argv[2]);
    else if (with_names)
        kallsyms(argv[2], argv + 3, argc - 3, 0);
    else if (strcmp(argv[1], "kallsyms-count") == 0)
        kallsyms(argv[2], NULL, 0, 1);
    else
        die("unknown mode '%s' (want ps, modules, kallsyms or kallsyms-count)", argv[1]);
    return fflush(stdout) == 0 ? 0 : 1;
}
