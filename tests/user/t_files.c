/* Files and the VFS: open flags, *at calls, rename, links, permissions, truncate, seeks,
 * getdents64, stat/statx, chmod/chown, utimensat, fcntl, dup*. Works in a scratch
 * directory under /tmp. */
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#define D "/tmp/t_files.d"

/* struct statx (musl's headers may predate it). */
struct kstatx {
    unsigned int stx_mask, stx_blksize;
    unsigned long long stx_attributes;
    unsigned int stx_nlink, stx_uid, stx_gid;
    unsigned short stx_mode, pad0;
    unsigned long long stx_ino, stx_size, stx_blocks, stx_attributes_mask;
    struct { long long tv_sec; unsigned int tv_nsec; int pad; } stx_atime, stx_btime, stx_ctime, stx_mtime;
    unsigned int stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
    unsigned long long spare[14];
};
#define KSTATX_SIZE 0x200U
#define KSTATX_BASIC 0x7ffU

static void put(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, s, strlen(s)) < 0) perror("write");
        close(fd);
    }
}

static long fsize(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Runs f in a child process; returns its exit status (or 100+signal). */
static int in_child(int (*f)(void)) {
    pid_t p = fork();
    if (p == 0) _exit(f());
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static int as_user_open(void) {
    if (setgid(1000) || setuid(1000)) return 2;
    int fd = open(D "/secret", O_RDONLY);
    if (fd >= 0) return 3;
    return errno == EACCES ? 0 : 4;
}

static int as_user_create_in_root_dir(void) {
    if (setgid(1000) || setuid(1000)) return 2;
    int fd = open(D "/rootdir/x", O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) return 3;
    return errno == EACCES ? 0 : 4;
}

static int as_user_chown(void) {
    if (setgid(1000) || setuid(1000)) return 2;
    if (chown(D "/owned", 0, 0) == 0) return 3;
    return errno == EPERM ? 0 : 4;
}

static int as_user_search(void) {
    if (setgid(1000) || setuid(1000)) return 2;
    struct stat st;
    if (stat(D "/noexec/f", &st) == 0) return 3;
    return errno == EACCES ? 0 : 4;
}

static int lock_probe_fd = -1;
static int child_flock_nb(void) {
    int fd = open(D "/lockf", O_RDWR);
    if (fd < 0) return 2;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 3;
    return errno == EWOULDBLOCK ? 0 : 4;
}

static int child_flock_sh_nb(void) {
    int fd = open(D "/lockf", O_RDONLY);
    if (fd < 0) return 2;
    return flock(fd, LOCK_SH | LOCK_NB) == 0 ? 0 : 3;
}

/* Blocks in F_SETLKW on bytes 0..9 until the parent drops its lock: 0 if it waited. */
static int child_setlkw_waits(void) {
    int fd = open(D "/lockf", O_RDWR);
    if (fd < 0) return 2;
    struct flock f = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (fcntl(fd, F_SETLKW, &f) != 0) return 3;
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    return ms >= 100 ? 0 : 4;
}

/* 0 if bytes 0..9 can be write-locked at once (nobody holds them). */
static int child_setlk_free(void) {
    int fd = open(D "/lockf", O_RDWR);
    if (fd < 0) return 2;
    struct flock f = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    return fcntl(fd, F_SETLK, &f) == 0 ? 0 : 3;
}

static int child_getlk(void) {
    int fd = open(D "/lockf", O_RDWR);
    if (fd < 0) return 2;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    if (fcntl(fd, F_GETLK, &fl) != 0) return 3;
    if (fl.l_type != F_WRLCK || fl.l_pid != getppid()) return 4;
    struct flock f2 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    if (fcntl(fd, F_SETLK, &f2) == 0) return 5;
    if (errno != EAGAIN && errno != EACCES) return 6;
    struct flock f3 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 10};
    if (fcntl(fd, F_SETLK, &f3) != 0) return 7;
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--fd-closed") == 0) {
        /* exec'd by the cloexec check: is the fd closed? */
        int fd = atoi(argv[2]);
        return fcntl(fd, F_GETFD) == -1 && errno == EBADF ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "--fd-open") == 0) return fcntl(atoi(argv[2]), F_GETFD) >= 0 ? 0 : 1;
    check_init("files");
    if (system("rm -rf " D) != 0) { /* no shell: fine if it does not exist */ }
    umask(022);
    CHECK("mkdir", mkdir(D, 0755) == 0);
    CHECK_ERR("mkdir_eexist", mkdir(D, 0755), EEXIST);
    if (chdir(D) != 0) perror("chdir");

    /* open and its flags */
    int fd = open(D "/a", O_RDWR | O_CREAT, 0644);
    CHECK("open_creat", fd >= 0);
    CHECK("write", write(fd, "hello", 5) == 5);
    char buf[512];
    CHECK("lseek_set", lseek(fd, 0, SEEK_SET) == 0);
    memset(buf, 0, sizeof buf);
    CHECK("read_back", read(fd, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK("read_eof", read(fd, buf, sizeof buf) == 0);
    close(fd);
    CHECK_ERR("open_excl_eexist", open(D "/a", O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);
    CHECK_ERR("open_enoent", open(D "/missing", O_RDONLY), ENOENT);
    CHECK_ERR("open_enoent_dir_component", open(D "/missing/x", O_RDONLY | O_CREAT, 0644), ENOENT);
    CHECK_ERR("open_enotdir_component", open(D "/a/x", O_RDONLY), ENOTDIR);
    CHECK_ERR("open_o_directory_on_file", open(D "/a", O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERR("open_dir_for_write", open(D, O_WRONLY), EISDIR);
    fd = open(D "/a", O_WRONLY | O_APPEND);
    CHECK("o_append", fd >= 0 && lseek(fd, 0, SEEK_SET) == 0 && write(fd, "!", 1) == 1 && fsize(D "/a") == 6);
    CHECK("o_append_getfl", (fcntl(fd, F_GETFL) & O_APPEND) != 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY);
    CHECK_ERR("read_on_wronly", read(fd, buf, 1), EBADF);
    close(fd);
    fd = open(D "/a", O_RDONLY);
    CHECK_ERR("write_on_rdonly", write(fd, "x", 1), EBADF);
    close(fd);
    fd = open(D "/a", O_RDWR | O_TRUNC);
    CHECK("o_trunc", fd >= 0 && fsize(D "/a") == 0);
    close(fd);
    fd = creat(D "/c", 0600);
    CHECK("creat", fd >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY);
    close(fd);
    CHECK_ERR("close_ebadf", close(12345), EBADF);

    /* *at calls relative to a directory fd */
    CHECK("mkdir_sub", mkdir(D "/sub", 0755) == 0);
    int dfd = open(D "/sub", O_RDONLY | O_DIRECTORY);
    CHECK("open_o_directory", dfd >= 0);
    fd = openat(dfd, "f", O_RDWR | O_CREAT, 0644);
    CHECK("openat_dirfd", fd >= 0 && fsize(D "/sub/f") == 0);
    close(fd);
    fd = openat(AT_FDCWD, "sub/f", O_RDONLY);
    CHECK("openat_fdcwd", fd >= 0);
    close(fd);
    fd = openat(dfd, D "/a", O_RDONLY);
    CHECK("openat_absolute_ignores_dirfd", fd >= 0);
    close(fd);
    int ffd = open(D "/a", O_RDONLY);
    CHECK_ERR("openat_file_dirfd_enotdir", openat(ffd, "x", O_RDONLY), ENOTDIR);
    close(ffd);
    CHECK_ERR("openat_bad_dirfd", openat(9999, "x", O_RDONLY), EBADF);
    CHECK("mkdirat", mkdirat(dfd, "d2", 0700) == 0);
    struct stat st;
    CHECK("fstatat", fstatat(dfd, "d2", &st, 0) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
    CHECK_ERR("unlinkat_dir_no_flag", unlinkat(dfd, "d2", 0), EISDIR);
    CHECK("unlinkat_removedir", unlinkat(dfd, "d2", AT_REMOVEDIR) == 0 && fstatat(dfd, "d2", &st, 0) == -1);
    CHECK_ERR("rmdir_nonempty", rmdir(D "/sub"), ENOTEMPTY);
    CHECK_ERR("rmdir_on_file", rmdir(D "/a"), ENOTDIR);
    CHECK_ERR("unlink_dir", unlink(D "/sub"), EISDIR);
    CHECK("renameat", renameat(dfd, "f", AT_FDCWD, "moved") == 0 && fsize(D "/moved") == 0 && fsize(D "/sub/f") == -1);
    CHECK("symlinkat_readlinkat", symlinkat("target", dfd, "ln") == 0 && readlinkat(dfd, "ln", buf, sizeof buf) == 6 && memcmp(buf, "target", 6) == 0);
    CHECK("linkat", linkat(AT_FDCWD, "moved", dfd, "hard", 0) == 0 && fstatat(dfd, "hard", &st, 0) == 0 && st.st_nlink == 2);
    CHECK("fchmodat", fchmodat(dfd, "hard", 0600, 0) == 0 && stat(D "/moved", &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK("faccessat", faccessat(dfd, "hard", R_OK | W_OK, 0) == 0);
    CHECK("fchownat", fchownat(dfd, "hard", 5, 6, 0) == 0 && stat(D "/moved", &st) == 0 && st.st_uid == 5 && st.st_gid == 6);

    /* rename */
    put(D "/r1", "one");
    put(D "/r2", "two!");
    CHECK("rename_replaces", rename(D "/r1", D "/r2") == 0 && fsize(D "/r2") == 3 && fsize(D "/r1") == -1);
    CHECK("rename_same", rename(D "/r2", D "/r2") == 0 && fsize(D "/r2") == 3);
    CHECK("rename_dir", mkdir(D "/rd", 0755) == 0 && rename(D "/rd", D "/rd2") == 0 && stat(D "/rd2", &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_ERR("rename_into_own_subdir", rename(D "/rd2", D "/rd2/inner"), EINVAL);
    CHECK_ERR("rename_file_over_dir", rename(D "/r2", D "/rd2"), EISDIR);
    CHECK_ERR("rename_dir_over_file", rename(D "/rd2", D "/r2"), ENOTDIR);
    CHECK("rename_dir_over_empty_dir", mkdir(D "/rd3", 0755) == 0 && rename(D "/rd2", D "/rd3") == 0 && stat(D "/rd2", &st) == -1);
    put(D "/r1", "x");
    CHECK_ERR("renameat2_noreplace", syscall(SYS_renameat2, AT_FDCWD, D "/r1", AT_FDCWD, D "/r2", 1 /* RENAME_NOREPLACE */), EEXIST);
    CHECK_ERR("rename_enoent", rename(D "/nope", D "/nope2"), ENOENT);

    /* hard and symbolic links */
    struct stat st2;
    CHECK("link", link(D "/r1", D "/l1") == 0 && stat(D "/r1", &st) == 0 && stat(D "/l1", &st2) == 0 && st.st_ino == st2.st_ino && st.st_nlink == 2);
    CHECK("unlink_link_nlink", unlink(D "/l1") == 0 && stat(D "/r1", &st) == 0 && st.st_nlink == 1);
    CHECK_ERR("link_dir_eperm", link(D "/sub", D "/subl"), EPERM);
    CHECK_ERR("link_exists", link(D "/r1", D "/r2"), EEXIST);
    CHECK("symlink", symlink("r1", D "/s1") == 0);
    ssize_t n = readlink(D "/s1", buf, sizeof buf);
    CHECK("readlink", n == 2 && memcmp(buf, "r1", 2) == 0);
    CHECK("readlink_truncates", readlink(D "/s1", buf, 1) == 1 && buf[0] == 'r');
    CHECK_ERR("readlink_not_link", readlink(D "/r1", buf, sizeof buf), EINVAL);
    CHECK("lstat_symlink", lstat(D "/s1", &st) == 0 && S_ISLNK(st.st_mode) && st.st_size == 2);
    CHECK("stat_follows", stat(D "/s1", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 1);
    CHECK("fstatat_nofollow", fstatat(AT_FDCWD, D "/s1", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));
    CHECK("symlink_dir_traverse", symlink(D "/sub", D "/sdir") == 0 && stat(D "/sdir/hard", &st) == 0);
    CHECK("symlink_relative_chain", symlink("s1", D "/s2") == 0 && stat(D "/s2", &st) == 0 && S_ISREG(st.st_mode));
    CHECK("symlink_loop_create", symlink("loopb", D "/loopa") == 0 && symlink("loopa", D "/loopb") == 0);
    CHECK_ERR("eloop", open(D "/loopa", O_RDONLY), ELOOP);
    CHECK_ERR("eloop_stat", stat(D "/loopa", &st), ELOOP);
    CHECK_ERR("o_nofollow", open(D "/s1", O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK("symlink_dangling", symlink("nowhere", D "/dang") == 0 && lstat(D "/dang", &st) == 0);
    CHECK_ERR("symlink_dangling_open", open(D "/dang", O_RDONLY), ENOENT);
    fd = open(D "/dang", O_WRONLY | O_CREAT, 0644);
    CHECK("open_creat_through_dangling", fd >= 0 && stat(D "/nowhere", &st) == 0);
    close(fd);
    CHECK_ERR("symlink_exists", symlink("x", D "/s1"), EEXIST);
    CHECK("unlink_symlink_keeps_target", unlink(D "/s1") == 0 && stat(D "/r1", &st) == 0);

    /* permissions and umask */
    umask(027);
    fd = open(D "/um", O_WRONLY | O_CREAT, 0777);
    CHECK("umask_applied", fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0750);
    close(fd);
    CHECK("umask_returns_old", umask(022) == 027);
    CHECK("mkdir_umask", mkdir(D "/umd", 0777) == 0 && stat(D "/umd", &st) == 0 && (st.st_mode & 0777) == 0755);
    put(D "/secret", "s");
    CHECK("chmod", chmod(D "/secret", 0600) == 0 && stat(D "/secret", &st) == 0 && (st.st_mode & 07777) == 0600);
    fd = open(D "/secret", O_RDONLY);
    CHECK("fchmod_setuid_bits", fchmod(fd, 04755) == 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 04755);
    fchmod(fd, 0600);
    close(fd);
    CHECK("perm_user_eacces", in_child(as_user_open) == 0);
    CHECK("perm_root_reads_0000", chmod(D "/secret", 0) == 0 && (fd = open(D "/secret", O_RDONLY)) >= 0);
    close(fd);
    CHECK_ERR("access_x_root_no_xbits", access(D "/secret", X_OK), EACCES);
    CHECK("access_f_ok", access(D "/secret", F_OK) == 0);
    mkdir(D "/rootdir", 0755);
    CHECK("perm_create_in_unwritable_dir", in_child(as_user_create_in_root_dir) == 0);
    put(D "/owned", "o");
    chown(D "/owned", 1000, 1000);
    CHECK("chown_user_eperm", in_child(as_user_chown) == 0);
    mkdir(D "/noexec", 0644);
    put(D "/noexec/f", "f");
    CHECK("perm_dir_search", in_child(as_user_search) == 0);
    CHECK("chown", chown(D "/owned", 7, 8) == 0 && stat(D "/owned", &st) == 0 && st.st_uid == 7 && st.st_gid == 8);
    CHECK("chown_minus_one_keeps", chown(D "/owned", -1, 9) == 0 && stat(D "/owned", &st) == 0 && st.st_uid == 7 && st.st_gid == 9);
    chmod(D "/owned", 06755);
    CHECK("chown_clears_setuid", chown(D "/owned", 7, 9) == 0 && stat(D "/owned", &st) == 0 && (st.st_mode & 06000) == 0);
    CHECK("lchown_symlink", symlink("owned", D "/os") == 0 && lchown(D "/os", 3, 3) == 0 && lstat(D "/os", &st) == 0 && st.st_uid == 3 && stat(D "/owned", &st2) == 0 && st2.st_uid == 7);

    /* truncate, seeks, pread/pwrite */
    put(D "/t", "abcdef");
    CHECK("truncate_shrink", truncate(D "/t", 3) == 0 && fsize(D "/t") == 3);
    CHECK("truncate_extend", truncate(D "/t", 10) == 0 && fsize(D "/t") == 10);
    fd = open(D "/t", O_RDWR);
    CHECK("truncate_zero_fill", read(fd, buf, 20) == 10 && memcmp(buf, "abc\0\0\0\0\0\0\0", 10) == 0);
    CHECK("ftruncate", ftruncate(fd, 2) == 0 && fsize(D "/t") == 2);
    CHECK_ERR("ftruncate_negative", ftruncate(fd, -1), EINVAL);
    CHECK("lseek_end", lseek(fd, 0, SEEK_END) == 2);
    CHECK("lseek_cur", lseek(fd, -1, SEEK_CUR) == 1);
    CHECK_ERR("lseek_negative", lseek(fd, -5, SEEK_SET), EINVAL);
    CHECK_ERR("lseek_bad_whence", lseek(fd, 0, 42), EINVAL);
    CHECK("lseek_past_end_hole", lseek(fd, 100, SEEK_SET) == 100 && write(fd, "Z", 1) == 1 && fsize(D "/t") == 101 && pread(fd, buf, 5, 50) == 5 && memcmp(buf, "\0\0\0\0\0", 5) == 0);
    lseek(fd, 1, SEEK_SET);
    CHECK("pread_no_offset_change", pread(fd, buf, 1, 0) == 1 && buf[0] == 'a' && lseek(fd, 0, SEEK_CUR) == 1);
    CHECK("pwrite_no_offset_change", pwrite(fd, "Q", 1, 0) == 1 && lseek(fd, 0, SEEK_CUR) == 1 && pread(fd, buf, 1, 0) == 1 && buf[0] == 'Q');
    CHECK_ERR("pread_negative_offset", pread(fd, buf, 1, -1), EINVAL);
    int pfd[2];
    pipe(pfd);
    CHECK_ERR("lseek_pipe_espipe", lseek(pfd[0], 0, SEEK_SET), ESPIPE);
    CHECK_ERR("pread_pipe_espipe", pread(pfd[0], buf, 1, 0), ESPIPE);
    close(pfd[0]);
    close(pfd[1]);
    struct iovec iov[2] = {{"ab", 2}, {"cde", 3}};
    lseek(fd, 0, SEEK_SET);
    CHECK("writev", writev(fd, iov, 2) == 5);
    char v1[2], v2[3];
    struct iovec rv[2] = {{v1, 2}, {v2, 3}};
    lseek(fd, 0, SEEK_SET);
    CHECK("readv", readv(fd, rv, 2) == 5 && memcmp(v1, "ab", 2) == 0 && memcmp(v2, "cde", 3) == 0);
    close(fd);

    /* stat, statx, getdents64 */
    put(D "/st", "12345");
    CHECK("stat_fields", stat(D "/st", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 5 && st.st_nlink == 1 && st.st_uid == 0 && st.st_blksize > 0);
    fd = open(D "/st", O_RDONLY);
    CHECK("fstat_same_ino", fstat(fd, &st2) == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev);
    close(fd);
    struct kstatx sx;
    memset(&sx, 0, sizeof sx);
    CHECK("statx", syscall(SYS_statx, AT_FDCWD, D "/st", 0, KSTATX_BASIC, &sx) == 0 && sx.stx_size == 5 && S_ISREG(sx.stx_mode) && (sx.stx_mask & KSTATX_SIZE) && sx.stx_ino == st.st_ino);
    CHECK("statx_empty_path", (fd = open(D "/st", O_RDONLY)) >= 0 && syscall(SYS_statx, fd, "", AT_EMPTY_PATH, KSTATX_BASIC, &sx) == 0 && sx.stx_size == 5);
    close(fd);
    CHECK("dir_nlink", mkdir(D "/nl", 0755) == 0 && mkdir(D "/nl/x", 0755) == 0 && stat(D "/nl", &st) == 0 && st.st_nlink == 3);
    mkdir(D "/gd", 0755);
    put(D "/gd/one", "1");
    put(D "/gd/two", "2");
    mkdir(D "/gd/three", 0755);
    dfd = open(D "/gd", O_RDONLY | O_DIRECTORY);
    char dbuf[4096];
    int seen = 0, dots = 0, typed = 0;
    long nb;
    while ((nb = syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf)) > 0) {
        for (long off = 0; off < nb;) {
            struct dirent64 *de = (struct dirent64 *)(dbuf + off);
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) dots++;
            else if (!strcmp(de->d_name, "one") || !strcmp(de->d_name, "two") || !strcmp(de->d_name, "three")) {
                seen++;
                if ((!strcmp(de->d_name, "three") && de->d_type == DT_DIR) || (strcmp(de->d_name, "three") && de->d_type == DT_REG)) typed++;
            }
            off += de->d_reclen;
        }
    }
    CHECKF("getdents64_entries", nb == 0 && seen == 3 && dots == 2, "nb %ld seen %d dots %d", nb, seen, dots);
    CHECK("getdents64_d_type", typed == 3);
    CHECK("getdents64_eof_again", syscall(SYS_getdents64, dfd, dbuf, sizeof dbuf) == 0);
    CHECK_ERR("getdents64_small_buf", (lseek(dfd, 0, SEEK_SET), syscall(SYS_getdents64, dfd, dbuf, 8)), EINVAL);
    close(dfd);
    fd = open(D "/gd/one", O_RDONLY);
    CHECK_ERR("getdents64_on_file", syscall(SYS_getdents64, fd, dbuf, sizeof dbuf), ENOTDIR);
    close(fd);
    unlink(D "/gd/one");
    DIR *dir = opendir(D "/gd");
    int cnt = 0;
    struct dirent *de;
    while (dir && (de = readdir(dir))) cnt++;
    if (dir) closedir(dir);
    CHECK("readdir_after_unlink", cnt == 4);

    /* utimensat */
    struct timespec ts[2] = {{1000000, 5}, {2000000, 7}};
    CHECK("utimensat_set", utimensat(AT_FDCWD, D "/st", ts, 0) == 0 && stat(D "/st", &st) == 0 && st.st_atim.tv_sec == 1000000 && st.st_mtim.tv_sec == 2000000);
    struct timespec ts2[2] = {{0, UTIME_OMIT}, {3000000, 0}};
    CHECK("utimensat_omit", utimensat(AT_FDCWD, D "/st", ts2, 0) == 0 && stat(D "/st", &st) == 0 && st.st_atim.tv_sec == 1000000 && st.st_mtim.tv_sec == 3000000);
    time_t now = time(0);
    CHECK("utimensat_now", utimensat(AT_FDCWD, D "/st", 0, 0) == 0 && stat(D "/st", &st) == 0 && st.st_mtim.tv_sec >= now - 2 && st.st_mtim.tv_sec <= now + 2);
    CHECK("write_updates_mtime", utimensat(AT_FDCWD, D "/st", ts, 0) == 0 && (fd = open(D "/st", O_WRONLY)) >= 0 && write(fd, "x", 1) == 1 && fstat(fd, &st) == 0 && st.st_mtim.tv_sec >= now - 2);
    close(fd);

    /* fcntl and dup */
    fd = open(D "/st", O_RDWR);
    CHECK("fcntl_getfd_default", fcntl(fd, F_GETFD) == 0);
    CHECK("fcntl_setfd_cloexec", fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC);
    CHECK("fcntl_setfl_nonblock", fcntl(fd, F_SETFL, O_NONBLOCK | O_APPEND) == 0 && (fcntl(fd, F_GETFL) & (O_NONBLOCK | O_APPEND)) == (O_NONBLOCK | O_APPEND));
    CHECK("fcntl_setfl_keeps_accmode", (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    int d = fcntl(fd, F_DUPFD, 50);
    CHECK("fcntl_dupfd_min", d >= 50 && fcntl(d, F_GETFD) == 0);
    close(d);
    d = fcntl(fd, F_DUPFD_CLOEXEC, 60);
    CHECK("fcntl_dupfd_cloexec", d >= 60 && fcntl(d, F_GETFD) == FD_CLOEXEC);
    close(d);
    CHECK_ERR("fcntl_bad_fd", fcntl(777, F_GETFD), EBADF);
    close(fd);
    fd = open(D "/st", O_RDONLY | O_CLOEXEC);
    CHECK("o_cloexec", fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC);
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", fd);
    pid_t pid = fork();
    if (pid == 0) {
        execl(argv[0], argv[0], "--fd-closed", fdarg, (char *)0);
        _exit(9);
    }
    int wst;
    CHECK("cloexec_closed_on_exec", waitpid(pid, &wst, 0) == pid && WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    fcntl(fd, F_SETFD, 0);
    pid = fork();
    if (pid == 0) {
        execl(argv[0], argv[0], "--fd-open", fdarg, (char *)0);
        _exit(9);
    }
    CHECK("fd_kept_across_exec", waitpid(pid, &wst, 0) == pid && WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    close(fd);
    fd = open(D "/st", O_RDONLY);
    d = dup(fd);
    CHECK("dup_shares_offset", d > fd && lseek(fd, 3, SEEK_SET) == 3 && lseek(d, 0, SEEK_CUR) == 3);
    CHECK("dup_no_cloexec", fcntl(d, F_GETFD) == 0);
    CHECK("dup2", dup2(fd, 40) == 40 && lseek(40, 0, SEEK_CUR) == 3);
    CHECK("dup2_same_fd", dup2(fd, fd) == fd);
    CHECK_ERR("dup2_bad_old", dup2(555, 41), EBADF);
    CHECK_ERR("dup3_same_fd", dup3(fd, fd, 0), EINVAL);
    CHECK("dup3_cloexec", dup3(fd, 40, O_CLOEXEC) == 40 && fcntl(40, F_GETFD) == FD_CLOEXEC);
    CHECK_ERR("dup3_bad_flags", syscall(SYS_dup3, fd, 42, 0x1234), EINVAL);
    close(40);
    close(d);
    close(fd);

    /* locks */
    put(D "/lockf", "0123456789");
    lock_probe_fd = open(D "/lockf", O_RDWR);
    CHECK("flock_ex", flock(lock_probe_fd, LOCK_EX) == 0);
    CHECK("flock_conflict_nb", in_child(child_flock_nb) == 0);
    CHECK("flock_unlock", flock(lock_probe_fd, LOCK_UN) == 0 && in_child(child_flock_nb) == 3);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    CHECK("fcntl_setlk", fcntl(lock_probe_fd, F_SETLK, &fl) == 0);
    CHECK("fcntl_getlk_conflict", in_child(child_getlk) == 0);
    /* POSIX locks belong to the process: closing any descriptor of the file drops them */
    int other = open(D "/lockf", O_RDONLY);
    close(other);
    CHECK("fcntl_close_other_fd_unlocks", in_child(child_setlk_free) == 0);
    CHECK("fcntl_relock", fcntl(lock_probe_fd, F_SETLK, &fl) == 0 && in_child(child_getlk) == 0);
    struct flock ul = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    CHECK("fcntl_unlock", fcntl(lock_probe_fd, F_SETLK, &ul) == 0 && in_child(child_setlk_free) == 0);
    /* a partial unlock splits the lock */
    struct flock whole = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    struct flock mid = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    CHECK("fcntl_split_unlock", fcntl(lock_probe_fd, F_SETLK, &whole) == 0 && fcntl(lock_probe_fd, F_SETLK, &mid) == 0 &&
                                    in_child(child_setlk_free) == 0);
    fcntl(lock_probe_fd, F_SETLK, &ul);
    struct flock eof = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 0};
    fcntl(lock_probe_fd, F_SETLK, &eof);
    /* F_SETLKW waits for the holder */
    CHECK("fcntl_setlk_again", fcntl(lock_probe_fd, F_SETLK, &fl) == 0);
    {
        pid_t w = fork();
        if (w == 0) _exit(child_setlkw_waits());
        usleep(300000);
        fcntl(lock_probe_fd, F_SETLK, &ul);
        int wst;
        CHECKF("fcntl_setlkw_woken", waitpid(w, &wst, 0) == w && WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "status %#x", wst);
    }
    CHECK_ERR("fcntl_setlk_bad_type", fcntl(lock_probe_fd, F_SETLK, &(struct flock){.l_type = 99}), EINVAL);
    int rdonly = open(D "/lockf", O_RDONLY);
    CHECK_ERR("fcntl_wrlck_on_rdonly_ebadf", fcntl(rdonly, F_SETLK, &fl), EBADF);
    /* open file description locks conflict between two opens in one process */
    struct flock o1 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    struct flock o2 = o1;
    int ofd2 = open(D "/lockf", O_RDWR);
    CHECK("ofd_setlk", fcntl(lock_probe_fd, F_OFD_SETLK, &o1) == 0);
    CHECK_ERR("ofd_conflict_same_process", fcntl(ofd2, F_OFD_SETLK, &o2), EAGAIN);
    struct flock og = o1;
    CHECK("ofd_getlk", fcntl(ofd2, F_OFD_GETLK, &og) == 0 && og.l_type == F_WRLCK && og.l_pid == -1);
    close(rdonly);
    CHECK_ERR("ofd_survives_other_close", fcntl(ofd2, F_OFD_SETLK, &o2), EAGAIN);
    close(lock_probe_fd);
    CHECK("ofd_released_on_close", fcntl(ofd2, F_OFD_SETLK, &o2) == 0);
    close(ofd2);
    /* flock: shared locks coexist; the lock dies with the open file description */
    lock_probe_fd = open(D "/lockf", O_RDONLY);
    CHECK("flock_sh", flock(lock_probe_fd, LOCK_SH) == 0 && in_child(child_flock_sh_nb) == 0);
    CHECK("flock_sh_blocks_ex", in_child(child_flock_nb) == 0);
    CHECK("flock_upgrade", flock(lock_probe_fd, LOCK_EX) == 0 && in_child(child_flock_sh_nb) == 3);
    int dupd = dup(lock_probe_fd);
    close(lock_probe_fd);
    CHECK("flock_held_by_dup", in_child(child_flock_nb) == 0);
    close(dupd);
    CHECK("flock_released_on_last_close", in_child(child_flock_nb) == 3);
    CHECK_ERR("flock_bad_op", flock(0, 0), EINVAL);

    /* misc */
    char cwd[PATH_MAX];
    CHECK("getcwd", getcwd(cwd, sizeof cwd) && strcmp(cwd, D) == 0);
    dfd = open(D "/sub", O_RDONLY | O_DIRECTORY);
    CHECK("fchdir", fchdir(dfd) == 0 && getcwd(cwd, sizeof cwd) && strcmp(cwd, D "/sub") == 0);
    close(dfd);
    CHECK("chdir_dotdot", chdir("..") == 0 && getcwd(cwd, sizeof cwd) && strcmp(cwd, D) == 0);
    CHECK("getcwd_erange", getcwd(cwd, 3) == NULL && errno == ERANGE);
    CHECK_ERR("chdir_file", chdir(D "/st"), ENOTDIR);
    char longname[400];
    memset(longname, 'n', sizeof longname);
    longname[sizeof longname - 1] = 0;
    CHECK_ERR("enametoolong", open(longname, O_RDONLY | O_CREAT, 0644), ENAMETOOLONG);
    fd = open(D "/gone", O_RDWR | O_CREAT, 0644);
    write(fd, "still", 5);
    CHECK("unlinked_file_usable", unlink(D "/gone") == 0 && pread(fd, buf, 5, 0) == 5 && memcmp(buf, "still", 5) == 0 && fstat(fd, &st) == 0 && st.st_nlink == 0);
    close(fd);
    CHECK("mknod_fifo", mknod(D "/fifo", S_IFIFO | 0644, 0) == 0 && stat(D "/fifo", &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK("empty_path_enoent", open("", O_RDONLY) == -1 && errno == ENOENT);
    CHECK("trailing_slash_on_file", open(D "/st/", O_RDONLY) == -1 && errno == ENOTDIR);
    CHECK("dot_dot_at_root", stat("/..", &st) == 0 && stat("/", &st2) == 0 && st.st_ino == st2.st_ino);

    /* extended attributes: none stored, answered as Linux does for a file without any */
    put(D "/xa", "x");
    char xv[64];
    CHECK_ERR("getxattr_none_enodata", syscall(SYS_getxattr, D "/xa", "user.k", xv, sizeof xv), ENODATA);
    CHECK_ERR("lgetxattr_selinux_enodata", syscall(SYS_lgetxattr, D "/xa", "security.selinux", xv, sizeof xv), ENODATA);
    CHECK("listxattr_empty", syscall(SYS_listxattr, D "/xa", xv, sizeof xv) == 0);
    CHECK_ERR("getxattr_missing_file", syscall(SYS_getxattr, D "/nope", "user.k", xv, sizeof xv), ENOENT);
    CHECK_ERR("fgetxattr_bad_fd", syscall(SYS_fgetxattr, -1, "user.k", xv, sizeof xv), EBADF);
    CHECK_ERR("getxattr_empty_name", syscall(SYS_getxattr, D "/xa", "", xv, sizeof xv), ERANGE);
    CHECK_ERR("getxattr_unknown_namespace", syscall(SYS_getxattr, D "/xa", "bogus.k", xv, sizeof xv), EOPNOTSUPP);
    CHECK_ERR("setxattr_bad_flags", syscall(SYS_setxattr, D "/xa", "user.k", "v", 1, 4), EINVAL);
    CHECK_ERR("getxattr_wild_name", syscall(SYS_getxattr, D "/xa", (char *)8, xv, sizeof xv), EFAULT);

    if (system("rm -rf " D) != 0) { /* best effort */ }
    return check_done();
}
