/* Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) across fork. Prints
 * "PASS: shmap.<name>" or "FAIL: shmap.<name>: reason" per check and
 * "shmap: N passed, M failed"; exits 1 if anything failed.
 * Runs on Linux too (musl-gcc -static -O2 -o /tmp/shmap tests/user/shmap.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;
#define CHECK(name, cond, ...)                                   \
    do {                                                         \
        if (cond) {                                              \
            printf("PASS: shmap.%s\n", name);                    \
            passed++;                                            \
        } else {                                                 \
            printf("FAIL: shmap.%s: ", name);                    \
            printf(__VA_ARGS__);                                 \
            printf("\n");                                        \
            failed++;                                            \
        }                                                        \
        fflush(stdout);                                          \
    } while (0)

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const size_t len = 3 * 4096;
    unsigned char *sh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK("map", sh != MAP_FAILED, "mmap: %s", strerror(errno));
    if (sh == MAP_FAILED)
        return 1;
    CHECK("zeroed", sh[0] == 0 && sh[len - 1] == 0, "fresh shared memory is not zero");
    unsigned char *pv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sh[5] = 1; /* touched before fork */
    pid_t c = fork();
    if (c == 0) {
        sh[5] = 55;
        sh[4096 + 7] = 77;     /* untouched before fork */
        sh[len - 1] = 99;
        pv[0] = 42;
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("child_writes_seen", sh[5] == 55 && sh[4096 + 7] == 77 && sh[len - 1] == 99, "parent sees %d %d %d", sh[5], sh[4096 + 7], sh[len - 1]);
    CHECK("private_stays_private", pv[0] == 0, "a MAP_PRIVATE page written by the child changed in the parent (%d)", pv[0]);

    /* parent -> child, while both run */
    volatile unsigned char *v = sh;
    v[100] = 0;
    c = fork();
    if (c == 0) {
        for (int i = 0; i < 500; i++) {
            if (v[100] == 123)
                _exit(0);
            msleep(10);
        }
        _exit(1);
    }
    msleep(30);
    v[100] = 123;
    waitpid(c, &st, 0);
    CHECK("parent_writes_seen", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child never saw the parent's write");

    /* concurrent atomic increments from parent and child */
    long *ctr = (long *)(sh + 2048);
    *ctr = 0;
    c = fork();
    for (int i = 0; i < 20000; i++)
        __atomic_fetch_add(ctr, 1, __ATOMIC_SEQ_CST);
    if (c == 0)
        _exit(0);
    waitpid(c, &st, 0);
    CHECK("atomic_counter", *ctr == 40000, "counter %ld, expected 40000", *ctr);

    /* a grandchild shares it too; a child's munmap leaves the parent's mapping alone */
    c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            sh[200] = 9;
            _exit(0);
        }
        waitpid(g, NULL, 0);
        munmap(sh, len);
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("grandchild_and_munmap", sh[200] == 9, "the grandchild's write was not seen (%d)", sh[200]);
    sh[201] = 1;
    CHECK("still_mapped", sh[201] == 1, "the parent lost its mapping");

    /* mprotect read-only then back: still the same shared page */
    mprotect(sh, 4096, PROT_READ);
    mprotect(sh, 4096, PROT_READ | PROT_WRITE);
    c = fork();
    if (c == 0) {
        sh[300] = 33;
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("after_mprotect", sh[300] == 33, "a child's write after mprotect was not seen (%d)", sh[300]);
    munmap(sh, len);
    printf("shmap: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
