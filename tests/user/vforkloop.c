/* The case that once made shared-memory vfork suspect (issue 20): t_proc's vfork checks
 * followed by four threads incrementing a counter under a mutex, which segfaulted about 1
 * run in 20 while vfork shared memory. Looped ITER times in one process: each round a vfork
 * child writes the parent's memory and exits, a vfork child execs `true`, a
 * clone(CLONE_VM) child writes the parent's memory, posix_spawn runs `true`, and four
 * threads count to 4 x 1000 under a mutex. Writable shared file mappings were reverted with
 * it, so they are in the loop too: the threads also count in a MAP_SHARED mapping of a file,
 * the vfork child writes to it, read(2) must see the count, and every 50 rounds the file is
 * unmapped and mapped again (its pages leave the cache and are read back). Any crash, wrong
 * value or failed call fails the run. Prints "PASS vforkloop N" at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define ITER 500

static volatile int word;
static volatile int counter;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* The shared file mapping: [0] counted by the threads, [1] written by the vfork child. */
static volatile int *fm;

static void *count(void *a) {
    (void)a;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        fm[0]++;
        pthread_mutex_unlock(&mu);
    }
    return 0;
}

static int clone_child(void *a) {
    (void)a;
    word = 3;
    return 0;
}

static int fail(int round, const char *what) {
    printf("FAIL vforkloop: round %d: %s (errno %d)\n", round, what, errno);
    return 1;
}

static int exited0(pid_t p) {
    int st;
    return waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void) {
    extern char **environ;
    enum { STK = 65536 };
    char *stk = malloc(STK);
    if (!stk) return fail(0, "malloc");
    int fd = open("/tmp/vforkloop.map", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return fail(0, "create the mapped file");
    fm = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fm == MAP_FAILED) return fail(0, "mmap(MAP_SHARED) of a file");
    for (int r = 0; r < ITER; r++) {
        word = 0;
        pid_t c = vfork();
        if (c == 0) {
            word = 1;
            fm[1] = r;
            _exit(0);
        }
        if (c < 0 || word != 1 || !exited0(c)) return fail(r, "vfork child's write not seen");
        if (fm[1] != r) return fail(r, "vfork child's store to the shared file mapping not seen");
        c = vfork();
        if (c == 0) {
            execl("/bin/busybox", "true", (char *)0);
            _exit(127);
        }
        if (c < 0 || !exited0(c)) return fail(r, "vfork + exec true");
        c = clone(clone_child, stk + STK, CLONE_VM | SIGCHLD, 0);
        if (c < 0 || !exited0(c) || word != 3) return fail(r, "clone(CLONE_VM) child's write not seen");
        char *const av[] = {"true", 0};
        if (posix_spawn(&c, "/bin/busybox", 0, 0, av, environ) != 0 || !exited0(c)) return fail(r, "posix_spawn true");
        counter = 0;
        fm[0] = 0;
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            if (pthread_create(&t[i], 0, count, 0) != 0) return fail(r, "pthread_create");
        for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
        if (counter != 4000) return fail(r, "mutex counter lost updates");
        int v = -1;
        if (fm[0] != 4000 || pread(fd, &v, sizeof v, 0) != sizeof v || v != 4000)
            return fail(r, "the count in the shared file mapping is not in the file");
        if (r % 50 == 49) {
            if (munmap((void *)fm, 4096) != 0) return fail(r, "munmap of the file mapping");
            fm = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (fm == MAP_FAILED || fm[0] != 4000 || fm[1] != r) return fail(r, "the file mapped again lost the stores");
        }
    }
    close(fd);
    unlink("/tmp/vforkloop.map");
    printf("PASS vforkloop %d\n", ITER);
    return 0;
}
