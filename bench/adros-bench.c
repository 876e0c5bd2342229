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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
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

/* libc's clock_gettime(CLOCK_MONOTONIC): answered by the vDSO where the kernel has one. */
static int b_clock(void) {
    const int n = 200000;
    struct timespec ts;
    double t = now();
    for (int i = 0; i < n; i++) {
        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return fail("syscall.clock_gettime", "clock_gettime");
    }
    result("syscall.clock_gettime", (now() - t) / n * 1e6, "us");
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

/* With AdrOS booted with `debug.profile=1` (ADROS_BENCH_APPEND, docs/bench.md), prints the
 * kernel profile of the phase that just ended (reading /proc/profile restarts it); nothing
 * elsewhere (Linux has no /proc/profile without `profile=`). */
static void profile(const char *phase) {
    static char buf[16384];
    int fd = open("/proc/profile", O_RDONLY);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || strncmp(buf, "profile: off", 12) == 0) return;
    buf[n] = 0;
    printf("PROFILE %s\n%sPROFILE-END\n", phase, buf);
}

/* ext2 metadata on a disk: mounts DEV (an ext2 image on virtio-blk) at MNT — AdrOS's native
 * driver (`-o driver=native`, or `rump`: NetBSD's ext2fs in the rump kernel), or, where that
 * option is unknown (Linux: EINVAL), the kernel's
 * own ext2 (Linux: the ext4 driver) — and times three phases on N entries in one new
 * directory: create (open O_CREAT|O_EXCL + close), list + stat (readdir, stat of each name),
 * unlink (each, then rmdir); then umount (everything written back). Phase totals in ms. */
static int b_ext2(const char *dev, const char *mnt, int n, const char *driver) {
    static const char *figs[] = {"fs.ext2_create", "fs.ext2_list_stat", "fs.ext2_unlink",
                                 "fs.ext2_umount"};
    char path[512], dir[256];
    alarm(480); /* the unoptimised native driver took ~30 s per phase under TCG */
    /* The peer's virtio_blk module may still be probing: wait up to 20 s for the node. */
    for (int i = 0; i < 200 && access(dev, F_OK) != 0; i++) usleep(100000);
    if (mkdir(mnt, 0755) < 0 && errno != EEXIST) {
        for (int i = 0; i < 4; i++) fail(figs[i], "mkdir mount point");
        return 1;
    }
    char opts[64];
    snprintf(opts, sizeof opts, "driver=%s", driver);
    if (mount(dev, mnt, "ext2", 0, opts) < 0 &&
        (errno != EINVAL || mount(dev, mnt, "ext2", 0, 0) < 0)) {
        for (int i = 0; i < 4; i++) fail(figs[i], "mount -t ext2");
        return 1;
    }
    snprintf(dir, sizeof dir, "%s/many", mnt);
    if (mkdir(dir, 0755) < 0) return fail(figs[0], "mkdir");
    profile("mount");
    double t = now();
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/entry-%06d", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) return fail(figs[0], "open(O_CREAT|O_EXCL)");
        close(fd);
    }
    result(figs[0], (now() - t) * 1e3, "ms");
    profile("create");
    t = now();
    DIR *d = opendir(dir);
    if (!d) return fail(figs[1], "opendir");
    int seen = 0;
    struct dirent *e;
    struct stat st;
    errno = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) < 0) return fail(figs[1], "stat");
        seen++;
        errno = 0;
    }
    if (errno) return fail(figs[1], "readdir");
    closedir(d);
    if (seen != n) {
        snprintf(path, sizeof path, "listed %d entries, created %d", seen, n);
        return failmsg(figs[1], path);
    }
    result(figs[1], (now() - t) * 1e3, "ms");
    profile("list_stat");
    t = now();
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/entry-%06d", dir, i);
        if (unlink(path) < 0) return fail(figs[2], "unlink");
    }
    if (rmdir(dir) < 0) return fail(figs[2], "rmdir");
    result(figs[2], (now() - t) * 1e3, "ms");
    profile("unlink");
    t = now();
    if (umount(mnt) < 0) return fail(figs[3], "umount");
    result(figs[3], (now() - t) * 1e3, "ms");
    profile("umount");
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

/* ---- net: TCP against the servers xtask runs on the host (reached as 10.0.2.2) ---- */

/* A TCP connection to HOST:PORT; retried for up to 60 s while the interface comes up
 * (DHCP on AdrOS, the static setup of the Linux peer's init). */
static int tcp_connect(const char *fig, const char *host, int port, int retry) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return failmsg(fig, "bad host address"), -1;
    double deadline = now() + (retry ? 60 : 0);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return fail(fig, "socket"), -1;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        int e = errno;
        close(fd);
        if (now() > deadline) {
            errno = e;
            return fail(fig, "connect"), -1;
        }
        usleep(200000);
    }
}

/* net.tcp_rx: MIB MiB from the host's source, read in 64 KiB calls. */
static int b_net_rx(const char *host, int port, int mib) {
    const char *fig = "net.tcp_rx";
    int fd = tcp_connect(fig, host, port, 1);
    if (fd < 0) return 1;
    static char buf[65536];
    long long want = (long long)mib << 20, got = 0;
    profile("net_connect");
    double t0 = now();
    while (got < want) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(fig, "read");
        if (n == 0) break;
        got += n;
    }
    double dt = now() - t0;
    profile("net_rx");
    close(fd);
    if (got != want) return failmsg(fig, "short stream from the host");
    result(fig, want / dt / 1048576.0, "MiB/s");
    return 0;
}

/* net.tcp_tx: MIB MiB to the host's sink in 64 KiB writes; done when the sink has read it
 * all and closed (its one-byte acknowledgement arrives). */
static int b_net_tx(const char *host, int port, int mib) {
    const char *fig = "net.tcp_tx";
    int fd = tcp_connect(fig, host, port, 1);
    if (fd < 0) return 1;
    static char buf[65536];
    memset(buf, 0x5a, sizeof buf);
    long long want = (long long)mib << 20, sent = 0;
    profile("net_connect");
    double t0 = now();
    while (sent < want) {
        ssize_t n = write(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(fig, "write");
        sent += n;
    }
    if (shutdown(fd, SHUT_WR) != 0) return fail(fig, "shutdown");
    char ack;
    if (read(fd, &ack, 1) != 1) return fail(fig, "read of the sink's acknowledgement");
    double dt = now() - t0;
    profile("net_tx");
    close(fd);
    result(fig, want / dt / 1048576.0, "MiB/s");
    return 0;
}

/* net.tcp_rr: 1-byte request/response round trips with the host's echo server. */
static int b_net_rr(const char *host, int port, int n) {
    const char *fig = "net.tcp_rr";
    int fd = tcp_connect(fig, host, port, 1);
    if (fd < 0) return 1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char c = 'x';
    profile("net_connect");
    double t0 = now();
    for (int i = 0; i < n; i++) {
        if (write(fd, &c, 1) != 1) return fail(fig, "write");
        if (read(fd, &c, 1) != 1) return fail(fig, "read");
    }
    double dt = now() - t0;
    profile("net_rr");
    close(fd);
    result(fig, dt / n * 1e6, "us");
    return 0;
}

/* net.tcp_connect: connect + the server's one byte + close, N times, one at a time. */
static int b_net_conn(const char *host, int port, int n) {
    const char *fig = "net.tcp_connect";
    int fd = tcp_connect(fig, host, port, 1);
    if (fd < 0) return 1;
    close(fd);
    double t0 = now();
    for (int i = 0; i < n; i++) {
        fd = tcp_connect(fig, host, port, 0);
        if (fd < 0) return 1;
        char c;
        if (read(fd, &c, 1) != 1) return fail(fig, "read");
        close(fd);
    }
    double dt = now() - t0;
    result(fig, n / dt, "conn/s");
    return 0;
}

/* Sequential read of the first `mib` MiB of `path` in 1 MiB read(2) calls (a cold read
 * right after boot: nothing of the device is cached yet); reports MiB/s as `fig`. */
static int b_read(const char *fig, const char *path, int mib) {
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(fig, "open");
    long long want = (long long)mib << 20, got = 0;
    double t0 = now();
    while (got < want) {
        ssize_t n = read(fd, buf, sizeof buf < (size_t)(want - got) ? sizeof buf : (size_t)(want - got));
        if (n < 0) return fail(fig, "read");
        if (n == 0) return failmsg(fig, "the device is smaller than asked for");
        got += n;
    }
    double dt = now() - t0;
    close(fd);
    result(fig, mib / dt, "MiB/s");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    alarm(TIMEOUT);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "getpid")) return b_getpid();
    if (!strcmp(cmd, "clock")) return b_clock();
    if (!strcmp(cmd, "fork")) return b_fork();
    if (!strcmp(cmd, "forkexec")) return b_forkexec();
    if (!strcmp(cmd, "pipe")) return b_pipe();
    if (!strcmp(cmd, "pingpong")) return pingpong("syscall.pipe_pingpong", 0);
    if (!strcmp(cmd, "pingpong-xcpu")) return pingpong("smp.pipe_pingpong_xcpu", 1);
    if (!strcmp(cmd, "pagefault")) return b_pagefault();
    if (!strcmp(cmd, "mmap")) return b_mmap();
    if (!strcmp(cmd, "fs")) return b_fs(argc > 2 ? argv[2] : "/tmp/adros-bench-fs");
    if (argc > 4 && !strcmp(cmd, "ext2"))
        return b_ext2(argv[2], argv[3], atoi(argv[4]), argc > 5 ? argv[5] : "native");
    if (!strcmp(cmd, "smp")) return b_smp(argc > 2 ? atoi(argv[2]) : 2);
    if (argc > 4 && !strcmp(cmd, "net-rx")) return b_net_rx(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc > 4 && !strcmp(cmd, "net-tx")) return b_net_tx(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc > 4 && !strcmp(cmd, "net-rr")) return b_net_rr(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc > 4 && !strcmp(cmd, "read")) return b_read(argv[2], argv[3], atoi(argv[4]));
    if (argc > 4 && !strcmp(cmd, "net-conn")) return b_net_conn(argv[2], atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr,
            "usage: adros-bench getpid|fork|forkexec|pipe|pingpong|pingpong-xcpu|pagefault|mmap|fs [DIR]|ext2 DEV MNT N [native|rump]|smp N|"
            "net-rx|net-tx|net-rr|net-conn HOST PORT N|read FIGURE PATH MIB\n");
    return 2;
}
