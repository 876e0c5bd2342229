/*
 * adros-bench: the benchmark program `cargo xtask bench` runs, unchanged, in AdrOS and in
 * the Linux peer. Static (musl-gcc -static -O2). One subcommand per measurement group.
 *
 * Output, one line per figure (parsed by xtask/src/bench):
 *   @B <figure> <value> <unit>      a result
 *   @F <figure> <reason…>           the figure could not be measured, and why
 * Timing uses clock_gettime(CLOCK_MONOTONIC) only. Every subcommand arms alarm(TIMEOUT) so
 * a hang becomes a failure (the shell sees status 142) instead of a stuck benchmark.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT 120

static double now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        printf("@F clock clock_gettime(CLOCK_MONOTONIC): %s (errno %d)\n", strerror(errno), errno);
        exit(3);
    }
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void result(const char *fig, double v, const char *unit) {
    printf("@B %s %.6g %s\n", fig, v, unit);
    fflush(stdout);
}

/* A failure of `what` (a syscall) while measuring `fig`: report errno. */
static int fail(const char *fig, const char *what) {
    printf("@F %s %s: %s (errno %d)\n", fig, what, strerror(errno), errno);
    fflush(stdout);
    return 1;
}

static int failmsg(const char *fig, const char *msg) {
    printf("@F %s %s\n", fig, msg);
    fflush(stdout);
    return 1;
}

/* waitpid that reports a child that did not exit 0. */
static int reap(const char *fig, pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return fail(fig, "waitpid");
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    char msg[96];
    if (WIFSIGNALED(st)) snprintf(msg, sizeof msg, "child killed by signal %d", WTERMSIG(st));
    else snprintf(msg, sizeof msg, "child exited with status %d", WEXITSTATUS(st));
    return failmsg(fig, msg);
}

static int b_getpid(void) {
    const int n = 200000;
    syscall(SYS_getpid);
    double t = now();
    for (int i = 0; i < n; i++) syscall(SYS_getpid);
    result("syscall.getpid", (now() - t) / n * 1e6, "us");
    return 0;
}

static int b_fork(void) {
    const int n = 200;
    double t = now();
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) return fail("syscall.fork_wait", "fork");
        if (p == 0) _exit(0);
        if (reap("syscall.fork_wait", p)) return 1;
    }
    result("syscall.fork_wait", (now() - t) / n * 1e3, "ms");
    return 0;
}

static int b_forkexec(void) {
    const int n = 40;
    double t = now();
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) return fail("syscall.fork_exec_wait", "fork");
        if (p == 0) {
            execl("/bin/busybox", "true", (char *)0);
            _exit(127);
        }
        if (reap("syscall.fork_exec_wait", p)) return 1;
    }
    result("syscall.fork_exec_wait", (now() - t) / n * 1e3, "ms");
    return 0;
}

static int b_pipe(void) {
    const char *fig = "syscall.pipe_throughput";
    const size_t chunk = 64 * 1024, total = 64ull << 20;
    int fd[2];
    if (pipe(fd) < 0) return fail(fig, "pipe");
    char *buf = malloc(chunk);
    memset(buf, 0x5a, chunk);
    double t = now();
    pid_t p = fork();
    if (p < 0) return fail(fig, "fork");
    if (p == 0) {
        close(fd[1]);
        size_t got = 0;
        for (;;) {
            ssize_t r = read(fd[0], buf, chunk);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += r;
        }
        _exit(got == total ? 0 : 1);
    }
    close(fd[0]);
    for (size_t sent = 0; sent < total;) {
        ssize_t w = write(fd[1], buf, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return fail(fig, "write");
        sent += w;
    }
    close(fd[1]);
    if (reap(fig, p)) return 1;
    result(fig, total / (now() - t) / 1e6, "MB/s");
    return 0;
}

/* Ping-pong of one byte over two pipes; with `cross_cpu`, parent on CPU 0 and child on CPU 1. */
static int pingpong(const char *fig, int cross_cpu) {
    const int n = 1000;
    int a[2], b[2];
    if (pipe(a) < 0 || pipe(b) < 0) return fail(fig, "pipe");
    cpu_set_t set;
    if (cross_cpu) {
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0) return fail(fig, "sched_setaffinity(CPU 0)");
    }
    pid_t p = fork();
    if (p < 0) return fail(fig, "fork");
    if (p == 0) {
        if (cross_cpu) {
            CPU_ZERO(&set);
            CPU_SET(1, &set);
            if (sched_setaffinity(0, sizeof set, &set) < 0) _exit(2);
        }
        char c;
        for (int i = 0; i < n; i++) {
            if (read(a[0], &c, 1) != 1) _exit(1);
            if (write(b[1], &c, 1) != 1) _exit(1);
        }
        _exit(0);
    }
    char c = 'x';
    /* One warm-up exchange so the child is running before the clock starts. */
    double t = 0;
    for (int i = 0; i < n; i++) {
        if (i == 1) t = now();
        if (write(a[1], &c, 1) != 1) return fail(fig, "write");
        if (read(b[0], &c, 1) != 1) return fail(fig, "read");
    }
    double dt = now() - t;
    if (reap(fig, p)) return 1;
    if (cross_cpu) {
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        CPU_SET(1, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    result(fig, dt / (n - 1) * 1e6, "us");
    return 0;
}

static int b_pagefault(void) {
    const char *fig = "syscall.page_fault";
    const size_t len = 64ull << 20;
    char *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return fail(fig, "mmap(64 MiB)");
    double t = now();
    for (size_t off = 0; off < len; off += 4096) m[off] = 1;
    double dt = now() - t;
    if (munmap(m, len) < 0) return fail(fig, "munmap");
    result(fig, dt / (len / 4096) * 1e6, "us");
    return 0;
}

static int b_mmap(void) {
    const char *fig = "syscall.mmap_munmap";
    const int n = 5000;
    double t = now();
    for (int i = 0; i < n; i++) {
        void *m = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return fail(fig, "mmap(1 MiB)");
        if (munmap(m, 1 << 20) < 0) return fail(fig, "munmap");
    }
    result(fig, (now() - t) / n * 1e6, "us");
    return 0;
}

static int b_fs(const char *dir) {
    const int n = 10000;
    char path[256];
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) return fail("fs.create", "mkdir");
    double t = now();
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%05d", dir, i);
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0) return fail("fs.create", "open(O_CREAT)");
        close(fd);
    }
    result("fs.create", (now() - t) / n * 1e6, "us");
    struct stat st;
    t = now();
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%05d", dir, i);
        if (stat(path, &st) < 0) return fail("fs.stat", "stat");
    }
    result("fs.stat", (now() - t) / n * 1e6, "us");
    t = now();
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%05d", dir, i);
        if (unlink(path) < 0) return fail("fs.unlink", "unlink");
    }
    result("fs.unlink", (now() - t) / n * 1e6, "us");
    rmdir(dir);
    return 0;
}

/* A fixed amount of integer work (xorshift), the same in every process. */
static uint64_t work(uint64_t iters) {
    uint64_t x = 88172645463325252ull;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

/* Runs `procs` processes of `iters` work each; with `one_cpu`, all pinned to CPU 0. */
static int cpu_run(const char *fig, int procs, uint64_t iters, int one_cpu, double *out) {
    pid_t pids[64];
    cpu_set_t set;
    double t = now();
    for (int i = 0; i < procs; i++) {
        pids[i] = fork();
        if (pids[i] < 0) return fail(fig, "fork");
        if (pids[i] == 0) {
            if (one_cpu) {
                CPU_ZERO(&set);
                CPU_SET(0, &set);
                if (sched_setaffinity(0, sizeof set, &set) < 0) _exit(2);
            }
            volatile uint64_t r = work(iters);
            (void)r;
            _exit(0);
        }
    }
    int bad = 0;
    for (int i = 0; i < procs; i++) bad |= reap(fig, pids[i]);
    *out = now() - t;
    return bad;
}

static int b_smp(int n) {
    if (n < 1 || n > 64) n = 2;
    const uint64_t iters = 150000000; /* ≈ 0.5 s per process under TCG */
    double t1, tn;
    char fig1[64], fign[64];
    snprintf(fig1, sizeof fig1, "smp.cpu_%dproc_1vcpu", n);
    snprintf(fign, sizeof fign, "smp.cpu_%dproc_%dvcpu", n, n);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    /* Probe affinity in a child so a failure is reported once, with its errno. */
    if (sched_setaffinity(0, sizeof set, &set) < 0) {
        fail(fig1, "sched_setaffinity(CPU 0)");
        fail("smp.speedup", "sched_setaffinity(CPU 0)");
        if (cpu_run(fign, n, iters, 0, &tn) == 0) result(fign, tn * 1e3, "ms");
        return 1;
    }
    CPU_ZERO(&set);
    for (int i = 0; i < n; i++) CPU_SET(i, &set);
    sched_setaffinity(0, sizeof set, &set);
    if (cpu_run(fig1, n, iters, 1, &t1)) return 1;
    result(fig1, t1 * 1e3, "ms");
    if (cpu_run(fign, n, iters, 0, &tn)) return 1;
    result(fign, tn * 1e3, "ms");
    result("smp.speedup", t1 / tn, "x");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    alarm(TIMEOUT);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "getpid")) return b_getpid();
    if (!strcmp(cmd, "fork")) return b_fork();
    if (!strcmp(cmd, "forkexec")) return b_forkexec();
    if (!strcmp(cmd, "pipe")) return b_pipe();
    if (!strcmp(cmd, "pingpong")) return pingpong("syscall.pipe_pingpong", 0);
    if (!strcmp(cmd, "pingpong-xcpu")) return pingpong("smp.pipe_pingpong_xcpu", 1);
    if (!strcmp(cmd, "pagefault")) return b_pagefault();
    if (!strcmp(cmd, "mmap")) return b_mmap();
    if (!strcmp(cmd, "fs")) return b_fs(argc > 2 ? argv[2] : "/tmp/adros-bench-fs");
    if (!strcmp(cmd, "smp")) return b_smp(argc > 2 ? atoi(argv[2]) : 2);
    fprintf(stderr,
            "usage: adros-bench getpid|fork|forkexec|pipe|pingpong|pingpong-xcpu|pagefault|mmap|fs [DIR]|smp N\n");
    return 2;
}
