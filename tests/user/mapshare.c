/* Writable shared file mappings on a file system: mapshare DIR creates DIR/shared.bin
 * (three pages of 'a', 'b', 'c'), maps it MAP_SHARED and writes through the mapping from
 * four threads, a fork child and the process itself, each store reaching the file by a
 * different road (read(2) coherence, msync, fsync, munmap, exit). Prints
 * "FAIL mapshare: what (errno N)" and exits 1 on the first problem, "PASS mapshare DIR" at
 * the end. What the file must then hold on the disk (checked by the host after unmount):
 *   offset 0:        "count=00004000" (four threads x 1000 increments under a mutex)
 *   offset 64:       "MSYNCED"   (stored, then msync(MS_SYNC))
 *   offset 4096:     "child"     (a fork child through the inherited mapping)
 *   offset 4096+64:  "UNMAPPED"  (stored, then munmap)
 *   offset 8192+64:  "EXITED"    (a fork child's own mapping; it exits without munmap)
 *   offset 8192+100: "WRITE"     (pwrite(2); must show in the mapping)
 *   offset 8192+200: "FSYNCED"   (stored, then fsync(2))
 * everything else as created. Runs on Linux too (musl-gcc -static). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096

static volatile char *map;
static volatile int counter;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int fail(const char *what) {
    printf("FAIL mapshare: %s (errno %d)\n", what, errno);
    return 1;
}

static void *count(void *a) {
    (void)a;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        char buf[16];
        snprintf(buf, sizeof buf, "count=%08d", counter);
        memcpy((char *)map, buf, 14);
        pthread_mutex_unlock(&mu);
    }
    return 0;
}

static int exited0(pid_t p) {
    int st;
    return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[256];
    snprintf(path, sizeof path, "%s/shared.bin", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return fail("create the file");
    char page[PG];
    for (int i = 0; i < 3; i++) {
        memset(page, 'a' + i, PG);
        if (write(fd, page, PG) != PG) return fail("write the file");
    }
    map = mmap(0, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return fail("mmap(MAP_SHARED, PROT_WRITE)");
    if (map[0] != 'a' || map[PG] != 'b' || map[2 * PG + 5] != 'c') return fail("the mapping does not show the file");

    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], 0, count, 0) != 0) return fail("pthread_create");
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    char buf[32] = {0};
    if (pread(fd, buf, 14, 0) != 14 || memcmp(buf, "count=00004000", 14) != 0) return fail("read(2) does not see the threads' stores");

    pid_t c = fork();
    if (c == 0) {
        memcpy((char *)map + PG, "child", 5);
        _exit(0);
    }
    if (!exited0(c) || memcmp((char *)map + PG, "child", 5) != 0) return fail("a fork child's store is not seen");

    if (pwrite(fd, "WRITE", 5, 2 * PG + 100) != 5 || memcmp((char *)map + 2 * PG + 100, "WRITE", 5) != 0)
        return fail("pwrite(2) does not show in the mapping");

    memcpy((char *)map + 64, "MSYNCED", 7);
    if (msync((void *)map, 3 * PG, MS_SYNC) != 0) return fail("msync");
    if (msync((char *)map + 1, PG, MS_SYNC) == 0 || errno != EINVAL) return fail("msync of an unaligned address is not EINVAL");

    memcpy((char *)map + 2 * PG + 200, "FSYNCED", 7);
    if (fsync(fd) != 0) return fail("fsync");

    c = fork();
    if (c == 0) {
        int cfd = open(path, O_RDWR);
        char *own = mmap(0, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (own == MAP_FAILED) _exit(1);
        memcpy(own + 2 * PG + 64, "EXITED", 6);
        _exit(own[PG] == 'c' ? 0 : 2);
    }
    if (!exited0(c)) return fail("a fork child's own mapping");
    if (memcmp((char *)map + 2 * PG + 64, "EXITED", 6) != 0) return fail("the child's own mapping is not the same pages");

    memcpy((char *)map + PG + 64, "UNMAPPED", 8);
    if (munmap((void *)map, 3 * PG) != 0) return fail("munmap");
    memset(buf, 0, sizeof buf);
    if (pread(fd, buf, 8, PG + 64) != 8 || memcmp(buf, "UNMAPPED", 8) != 0) return fail("the store before munmap is not in the file");

    /* A read-only descriptor never gets a writable shared mapping. */
    int ro = open(path, O_RDONLY);
    if (mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) != MAP_FAILED || errno != EACCES)
        return fail("a writable shared mapping of a read-only descriptor is not EACCES");
    char *r = mmap(0, PG, PROT_READ, MAP_SHARED, ro, 0);
    if (r == MAP_FAILED || memcmp(r, "count=00004000", 14) != 0) return fail("a read-only shared mapping");
    if (mprotect(r, PG, PROT_READ | PROT_WRITE) == 0 || errno != EACCES) return fail("mprotect(PROT_WRITE) of it is not EACCES");
    munmap(r, PG);
    close(ro);
    close(fd);
    printf("PASS mapshare %s\n", dir);
    return 0;
}
