/* ext2work: the scripted file-system workload `cargo xtask compare ext2` (ext2 on virtio-blk)
 * and `cargo xtask compare usb` (FAT32 on a USB stick) run on each driver stack.
 *
 *   ext2work [-t FSTYPE] [-w SECS] [-d DISK] DEV STACK MNT [BIG_MIB] [MANY]
 *
 *   -t FSTYPE  the file system type for mount(2) (default ext2; `vfat` for FAT);
 *   -w SECS    wait up to SECS seconds for DEV to appear (USB sticks come asynchronously);
 *   -d DISK    the disk under DEV as /proc/drivers names it (`usb-disk DISK …`): the bytes it
 *              moved during seqread must be at least the file's size (the read really was
 *              cold: no cache of either stack served it), printed as `COLD seqread …`;
 *   MANY 0     skips the big-directory phase.
 *
 * mounts DEV on MNT with `-o driver=STACK`, then:
 *   walk     — every regular file under MNT/tree read and hashed (FNV-1a 64), path order;
 *   files    — 1,000 files of 4 KiB created, renamed, half unlinked, the rest read back;
 *   seqwrite — a BIG_MIB (64) MiB file written in 1 MiB writes, fsync, unmount (the data on
 *              the disk; only the time in the calls counts, making the data is outside);
 *   seqread  — mounted again (cold caches), the file read in 1 MiB reads (only the time in
 *              open/read/close counts, like `dd of=/dev/null`; hashing is outside);
 *   dir      — MANY (10,000) empty files created in one directory, listed, each stat'ed,
 *              all unlinked;
 * and unmounts. Prints `RESULT name value unit` (timed with CLOCK_MONOTONIC) and
 * `DIGEST name value` lines — the digests must be equal on both stacks — then `DONE`.
 * Any failure prints `FAIL what: errno text` and exits 1. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *dev, *stack, *mnt, *fstype = "ext2", *disk;
static char opts[64];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    printf("FAIL %s: %d %s\n", what, errno, strerror(errno));
    exit(1);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* With `debug.profile=1`, prints the kernel's profile of the phase that just ended (reading
 * /proc/profile also restarts it). */
/* PATH's contents (NUL-terminated, at most 16 KiB) in a static buffer, or NULL. */
static const char *slurp(const char *path) {
    static char buf[16384];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return NULL;
    buf[n] = 0;
    return buf;
}

static void profile(const char *phase) {
    const char *p = slurp("/proc/profile");
    if (!p || strncmp(p, "profile: off", 12) == 0) return;
    printf("PROFILE %s\n%s", phase, p);
    if ((p = slurp("/proc/drivers"))) printf("%s", p);
    printf("PROFILE-END\n");
}

static void do_mount(void) {
    if (mount(dev, mnt, fstype, 0, opts) != 0) die("mount");
}

/* The `bytes=` counter of /proc/drivers' `usb-disk DISK …` line (reads and writes), or -1. */
static long long disk_bytes(void) {
    const char *p = slurp("/proc/drivers");
    if (!p || !disk) return -1;
    char key[64];
    snprintf(key, sizeof key, "usb-disk %s ", disk);
    for (const char *l = p; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, strlen(key)) != 0) continue;
        const char *end = strchr(l, '\n');
        const char *b = strstr(l, " bytes=");
        if (b && (!end || b < end)) return atoll(b + 7);
    }
    return -1;
}

static void do_umount(void) {
    if (umount(mnt) != 0) die("umount");
}

static char buf[1 << 20];

/* Reads PATH and returns its FNV hash; the seconds spent inside open/read/close (not in
 * hashing, which costs about as much as the I/O under TCG) are added to *io. */
static uint64_t hash_file(const char *path, uint64_t *bytes, double *io) {
    double t = now();
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) die(path);
        if (n == 0) break;
        *io += now() - t;
        h = fnv(h, buf, n);
        *bytes += n;
        t = now();
    }
    close(fd);
    *io += now() - t;
    return h;
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks `dir`, hashing regular files in sorted path order into *h. */
static void walk(const char *dir, uint64_t *h, long *files, uint64_t *bytes) {
    DIR *d = opendir(dir);
    if (!d) die(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    if (errno) die("readdir");
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    for (size_t i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        struct stat st;
        if (lstat(p, &st) != 0) die(p);
        *h = fnv(*h, names[i], strlen(names[i]) + 1);
        if (S_ISDIR(st.st_mode)) {
            walk(p, h, files, bytes);
        } else if (S_ISREG(st.st_mode)) {
            double io = 0;
            uint64_t fh = hash_file(p, bytes, &io);
            *h = fnv(*h, &fh, sizeof fh);
            (*files)++;
        } else if (S_ISLNK(st.st_mode)) {
            char t[4096];
            ssize_t k = readlink(p, t, sizeof t);
            if (k < 0) die(p);
            *h = fnv(*h, t, k);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    int c;
    long wait_s = 0;
    while ((c = getopt(argc, argv, "t:w:d:")) != -1) {
        switch (c) {
        case 't': fstype = optarg; break;
        case 'w': wait_s = atol(optarg); break;
        case 'd': disk = optarg; break;
        default: goto usage;
        }
    }
    argv += optind - 1;
    argc -= optind - 1;
    if (argc < 4) {
    usage:
        fprintf(stderr, "usage: ext2work [-t FSTYPE] [-w SECS] [-d DISK] DEV STACK MNT [BIG_MIB] [MANY]\n");
        return 2;
    }
    dev = argv[1];
    stack = argv[2];
    mnt = argv[3];
    long big = argc > 4 ? atol(argv[4]) : 64;
    long many = argc > 5 ? atol(argv[5]) : 10000;
    if (big < 1 || many < 0) {
        fprintf(stderr, "ext2work: BIG_MIB must be at least 1 and MANY at least 0\n");
        return 2;
    }
    struct stat dst;
    for (long i = 0; stat(dev, &dst) != 0 && i < wait_s * 10; i++) usleep(100000);
    if (stat(dev, &dst) != 0) die(dev);
    if (disk && disk_bytes() < 0) {
        errno = ENODEV;
        die("no usb-disk line for the -d disk in /proc/drivers");
    }
    snprintf(opts, sizeof opts, "driver=%s", stack);
    char p[4096], q[4096];
    setvbuf(stdout, NULL, _IOLBF, 0);
    profile("boot");

    double t0 = now();
    do_mount();
    printf("RESULT mount %.3f ms\n", (now() - t0) * 1e3);
    profile("mount");

    /* walk */
    uint64_t h = 0xcbf29ce484222325ULL, bytes = 0;
    long files = 0;
    snprintf(p, sizeof p, "%s/tree", mnt);
    t0 = now();
    walk(p, &h, &files, &bytes);
    double dt = now() - t0;
    printf("RESULT walk %.3f ms\n", dt * 1e3);
    profile("walk");
    printf("DIGEST walk %016llx files=%ld bytes=%llu\n", (unsigned long long)h, files, (unsigned long long)bytes);

    /* files: create, rename, unlink half, read back */
    snprintf(p, sizeof p, "%s/work", mnt);
    if (mkdir(p, 0755) != 0) die("mkdir work");
    static char page[4096];
    t0 = now();
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof p, "%s/work/f%04d", mnt, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) die("create");
        memset(page, 'a' + i % 26, sizeof page);
        snprintf(page, 32, "file %d\n", i);
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) die("write");
        close(fd);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof p, "%s/work/f%04d", mnt, i);
        snprintf(q, sizeof q, "%s/work/g%04d", mnt, i);
        if (rename(p, q) != 0) die("rename");
    }
    for (int i = 0; i < 1000; i += 2) {
        snprintf(q, sizeof q, "%s/work/g%04d", mnt, i);
        if (unlink(q) != 0) die("unlink");
    }
    h = 0xcbf29ce484222325ULL;
    files = 0;
    bytes = 0;
    snprintf(p, sizeof p, "%s/work", mnt);
    walk(p, &h, &files, &bytes);
    dt = now() - t0;
    printf("RESULT files %.3f ms\n", dt * 1e3);
    profile("files");
    printf("DIGEST files %016llx files=%ld bytes=%llu\n", (unsigned long long)h, files, (unsigned long long)bytes);

    /* seqwrite: BIG MiB, fsync, unmount */
    snprintf(p, sizeof p, "%s/big", mnt);
    /* Only open/write/fsync/close/umount are timed: making and hashing the data costs
     * about as much as the I/O under TCG. */
    t0 = now();
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("create big");
    dt = now() - t0;
    h = 0xcbf29ce484222325ULL;
    for (long m = 0; m < big; m++) {
        for (size_t i = 0; i < sizeof buf; i += 8) {
            uint64_t v = (uint64_t)m * 0x9e3779b97f4a7c15ULL + i;
            memcpy(buf + i, &v, 8);
        }
        h = fnv(h, buf, sizeof buf);
        t0 = now();
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("write big");
        dt += now() - t0;
    }
    t0 = now();
    if (fsync(fd) != 0) die("fsync big");
    close(fd);
    do_umount();
    dt += now() - t0;
    printf("RESULT seqwrite %.1f MiB/s\n", big / dt);
    profile("seqwrite");
    printf("DIGEST seqwrite %016llx\n", (unsigned long long)h);

    /* seqread, cold */
    do_mount();
    bytes = 0;
    dt = 0;
    long long before = disk_bytes();
    uint64_t rh = hash_file(p, &bytes, &dt);
    long long after = disk_bytes();
    if (bytes != (uint64_t)big << 20) {
        errno = EIO;
        die("big file length");
    }
    if (disk) {
        printf("COLD seqread disk=%s disk_bytes=%lld file_bytes=%llu\n", disk, after - before,
               (unsigned long long)bytes);
        if (after - before < (long long)bytes) {
            printf("FAIL seqread was not cold: %s moved %lld bytes for a %llu-byte file\n", disk,
                   after - before, (unsigned long long)bytes);
            return 1;
        }
    }
    printf("RESULT seqread %.1f MiB/s\n", big / dt);
    profile("seqread");
    printf("DIGEST seqread %016llx\n", (unsigned long long)rh);

    /* dir: many entries */
    if (many == 0) goto done;
    snprintf(p, sizeof p, "%s/many", mnt);
    if (mkdir(p, 0755) != 0) die("mkdir many");
    t0 = now();
    for (long i = 0; i < many; i++) {
        snprintf(q, sizeof q, "%s/many/entry-%06ld", mnt, i);
        int f = open(q, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (f < 0) die("create entry");
        close(f);
    }
    printf("RESULT dir_create %.3f ms\n", (now() - t0) * 1e3);
    profile("dir_create");
    t0 = now();
    DIR *d = opendir(p);
    if (!d) die("opendir many");
    long seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(q, sizeof q, "%s/many/%s", mnt, e->d_name);
        struct stat st;
        if (stat(q, &st) != 0) die("stat entry");
        seen++;
    }
    closedir(d);
    printf("RESULT dir_list_stat %.3f ms\n", (now() - t0) * 1e3);
    profile("dir_list_stat");
    printf("DIGEST dir entries=%ld\n", seen);
    t0 = now();
    for (long i = 0; i < many; i++) {
        snprintf(q, sizeof q, "%s/many/entry-%06ld", mnt, i);
        if (unlink(q) != 0) die("unlink entry");
    }
    if (rmdir(p) != 0) die("rmdir many");
    printf("RESULT dir_unlink %.3f ms\n", (now() - t0) * 1e3);
    profile("dir_unlink");

done:
    t0 = now();
    do_umount();
    printf("RESULT umount %.3f ms\n", (now() - t0) * 1e3);
    profile("umount");
    printf("DONE\n");
    return 0;
}
