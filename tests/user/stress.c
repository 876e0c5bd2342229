/* SMP stress tests run inside AdrOS by tests/tests/s06_smp.rs (also usable by hand:
 * `stress <test>`). Each prints "PASS <test> ..." or "FAIL <test>: why" and exits 0/1. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *t, const char *why) { printf("FAIL %s: %s (errno %d)\n", t, why, errno); return 1; }

static unsigned long spin_work(unsigned long n) {
    volatile unsigned long x = 1;
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

/* N CPU-bound processes, each computing a known value. */
static int cpu_bound(void) {
    int n = 8;
    unsigned long expect = spin_work(2000000);
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) return fail("cpu_bound", "fork");
        if (p == 0) _exit(spin_work(2000000) == expect ? 0 : 3);
    }
    for (int i = 0; i < n; i++) {
        int st;
        if (wait(&st) < 0) return fail("cpu_bound", "wait");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return fail("cpu_bound", "child computed a wrong value");
    }
    printf("PASS cpu_bound %d processes\n", n);
    return 0;
}

/* Many fork/exec/wait cycles with several in flight. */
static int fork_storm(void) {
    int total = 0;
    for (int round = 0; round < 10; round++) {
        pid_t kids[6];
        for (int i = 0; i < 6; i++) {
            kids[i] = fork();
            if (kids[i] < 0) return fail("fork_storm", "fork");
            if (kids[i] == 0) {
                execl("/bin/busybox", "true", (char *)0);
                _exit(127);
            }
        }
        for (int i = 0; i < 6; i++) {
            int st;
            if (waitpid(kids[i], &st, 0) != kids[i]) return fail("fork_storm", "waitpid");
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return fail("fork_storm", "child failed");
            total++;
        }
    }
    printf("PASS fork_storm %d execs\n", total);
    return 0;
}

/* Ping-pong over two pipes between two processes. */
static int pipe_pingpong(void) {
    int a[2], b[2];
    if (pipe(a) || pipe(b)) return fail("pipe_pingpong", "pipe");
    pid_t p = fork();
    if (p == 0) {
        unsigned v;
        close(a[1]);
        close(b[0]);
        for (;;) {
            if (read(a[0], &v, sizeof v) != sizeof v) _exit(0);
            v++;
            if (write(b[1], &v, sizeof v) != sizeof v) _exit(2);
        }
    }
    close(a[0]);
    close(b[1]);
    unsigned v = 0;
    for (int i = 0; i < 2000; i++) {
        unsigned w = v;
        if (write(a[1], &w, sizeof w) != sizeof w) return fail("pipe_pingpong", "write");
        if (read(b[0], &v, sizeof v) != sizeof v) return fail("pipe_pingpong", "read");
        if (v != w + 1) return fail("pipe_pingpong", "wrong value");
    }
    close(a[1]);
    int st;
    waitpid(p, &st, 0);
    printf("PASS pipe_pingpong 2000 round trips\n");
    return 0;
}

/* Threads contending on a mutex and a condition variable (futex-based in musl). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter, turns;
static void *contender(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < 3000; i++) {
        pthread_mutex_lock(&mu);
        long c = counter;
        if ((i & 63) == 0) sched_yield();
        counter = c + 1;
        pthread_mutex_unlock(&mu);
    }
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&mu);
        while (turns % 4 != id % 4) pthread_cond_wait(&cv, &mu);
        turns++;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
    return 0;
}
static int futex_threads(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        if (pthread_create(&t[i], 0, contender, (void *)i)) return fail("futex_threads", "pthread_create");
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    if (counter != 4 * 3000) return fail("futex_threads", "mutex lost updates");
    if (turns != 4 * 200) return fail("futex_threads", "condvar turns wrong");
    printf("PASS futex_threads counter=%ld turns=%ld\n", counter, turns);
    return 0;
}

/* Threads of one process mapping, touching and unmapping memory concurrently. */
static atomic_int mmap_errors;
static void *mapper(void *arg) {
    unsigned seed = (unsigned)(long)arg;
    for (int i = 0; i < 300; i++) {
        size_t len = (size_t)(1 + (seed = seed * 1103515245 + 12345) % 16) * 4096;
        unsigned char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { atomic_fetch_add(&mmap_errors, 1); continue; }
        for (size_t o = 0; o < len; o += 4096) p[o] = (unsigned char)(o >> 12);
        for (size_t o = 0; o < len; o += 4096) if (p[o] != (unsigned char)(o >> 12)) atomic_fetch_add(&mmap_errors, 1);
        if (i % 3 == 0 && mprotect(p, len, PROT_READ)) atomic_fetch_add(&mmap_errors, 1);
        if (munmap(p, len)) atomic_fetch_add(&mmap_errors, 1);
    }
    return 0;
}
static int mmap_threads(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        if (pthread_create(&t[i], 0, mapper, (void *)(i + 1))) return fail("mmap_threads", "pthread_create");
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    if (mmap_errors) return fail("mmap_threads", "data or mapping errors");
    printf("PASS mmap_threads 4x300 map/touch/protect/unmap\n");
    return 0;
}

/* Signals sent to a busy thread and to busy child processes are delivered. */
static atomic_int got;
static void on_usr1(int s) { (void)s; atomic_fetch_add(&got, 1); }
static void *busy(void *arg) { (void)arg; while (atomic_load(&got) < 20) spin_work(1000); return 0; }
static int signals_busy(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    pthread_t t;
    if (pthread_create(&t, 0, busy, 0)) return fail("signals_busy", "pthread_create");
    for (int i = 0; i < 200 && atomic_load(&got) < 20; i++) {
        pthread_kill(t, SIGUSR1);
        usleep(2000);
    }
    pthread_join(t, 0);
    if (atomic_load(&got) < 20) return fail("signals_busy", "signals to a busy thread were lost");
    pid_t p = fork();
    if (p == 0) { for (;;) spin_work(100000); }
    usleep(20000);
    kill(p, SIGTERM);
    int st;
    waitpid(p, &st, 0);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM) return fail("signals_busy", "busy child did not die of SIGTERM");
    printf("PASS signals_busy %d handler runs\n", atomic_load(&got));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    const char *t = argc > 1 ? argv[1] : "all";
    int all = !strcmp(t, "all"), rc = 0;
    if (all || !strcmp(t, "cpu_bound")) rc |= cpu_bound();
    if (all || !strcmp(t, "fork_storm")) rc |= fork_storm();
    if (all || !strcmp(t, "pipe_pingpong")) rc |= pipe_pingpong();
    if (all || !strcmp(t, "futex_threads")) rc |= futex_threads();
    if (all || !strcmp(t, "mmap_threads")) rc |= mmap_threads();
    if (all || !strcmp(t, "signals_busy")) rc |= signals_busy();
    return rc;
}
