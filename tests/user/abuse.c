/* Feeds wild pointers, huge lengths and invalid flags to many system calls; every call
 * must return an error (or a harmless result) and the kernel must keep running.
 * Prints "PASS abuse N calls" when all N calls came back; a kernel crash ends the run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BAD ((long)0xdeadbeef000)
#define KERNEL ((long)0xffffffff80100000)
#define HUGE ((long)0x7fffffffffff)

static int calls, wrong;

static void expect_err(const char *what, long nr, long a, long b, long c, long d, long e, long f) {
    long r = syscall(nr, a, b, c, d, e, f);
    calls++;
    if (r >= 0) {
        wrong++;
        printf("UNEXPECTED %s returned %ld\n", what, r);
    }
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    char buf[64];
    int fd = open("/bin/busybox", O_RDONLY);
    long ptrs[] = {BAD, KERNEL, 1, -1};
    for (int i = 0; i < 4; i++) {
        long p = ptrs[i];
        expect_err("read(bad buf)", SYS_read, fd, p, 100, 0, 0, 0);
        expect_err("write(bad buf)", SYS_write, 1, p, 100, 0, 0, 0);
        expect_err("open(bad path)", SYS_open, p, 0, 0, 0, 0, 0);
        expect_err("stat(bad path)", SYS_stat, p, (long)buf, 0, 0, 0, 0);
        expect_err("stat(bad buf)", SYS_stat, (long)"/", p, 0, 0, 0, 0);
        expect_err("fstat(bad buf)", SYS_fstat, fd, p, 0, 0, 0, 0);
        expect_err("lstat(bad path)", SYS_lstat, p, (long)buf, 0, 0, 0, 0);
        expect_err("poll(bad fds)", SYS_poll, p, 4, 0, 0, 0, 0);
        expect_err("rt_sigaction(bad act)", SYS_rt_sigaction, 10, p, 0, 8, 0, 0);
        expect_err("rt_sigprocmask(bad set)", SYS_rt_sigprocmask, 0, p, 0, 8, 0, 0);
        expect_err("pread(bad buf)", SYS_pread64, fd, p, 10, 0, 0, 0);
        expect_err("pread(tty)", SYS_pread64, 0, (long)buf, 10, 0, 0, 0);
        expect_err("readv(bad iov)", SYS_readv, 0, p, 2, 0, 0, 0);
        expect_err("writev(bad iov)", SYS_writev, 1, p, 2, 0, 0, 0);
        expect_err("access(bad path)", SYS_access, p, 0, 0, 0, 0, 0);
        expect_err("pipe(bad fds)", SYS_pipe, p, 0, 0, 0, 0, 0);
        expect_err("select(bad sets)", SYS_select, 10, p, p, p, (long)buf, 0);
        expect_err("nanosleep(bad ts)", SYS_nanosleep, p, 0, 0, 0, 0, 0);
        expect_err("getcwd(bad buf)", SYS_getcwd, p, 100, 0, 0, 0, 0);
        expect_err("chdir(bad path)", SYS_chdir, p, 0, 0, 0, 0, 0);
        expect_err("rename(bad)", SYS_rename, p, p, 0, 0, 0, 0);
        expect_err("mkdir(bad)", SYS_mkdir, p, 0755, 0, 0, 0, 0);
        expect_err("rmdir(bad)", SYS_rmdir, p, 0, 0, 0, 0, 0);
        expect_err("unlink(bad)", SYS_unlink, p, 0, 0, 0, 0, 0);
        expect_err("symlink(bad)", SYS_symlink, p, p, 0, 0, 0, 0);
        expect_err("readlink(bad)", SYS_readlink, p, (long)buf, 10, 0, 0, 0);
        expect_err("chmod(bad)", SYS_chmod, p, 0, 0, 0, 0, 0);
        expect_err("uname(bad)", SYS_uname, p, 0, 0, 0, 0, 0);
        expect_err("getrlimit(bad)", SYS_getrlimit, 7, p, 0, 0, 0, 0);
        expect_err("sysinfo(bad)", SYS_sysinfo, p, 0, 0, 0, 0, 0);
        expect_err("clock_gettime(bad)", SYS_clock_gettime, 1, p, 0, 0, 0, 0);
        expect_err("gettimeofday(bad)", SYS_gettimeofday, p, 0, 0, 0, 0, 0);
        expect_err("wait4(bad status)", SYS_wait4, -1, p, 0, 0, 0, 0);
        expect_err("execve(bad path)", SYS_execve, p, 0, 0, 0, 0, 0);
        expect_err("execve(bad argv)", SYS_execve, (long)"/bin/busybox", p, 0, 0, 0, 0);
        expect_err("openat(bad)", SYS_openat, -100, p, 0, 0, 0, 0);
        expect_err("newfstatat(bad)", SYS_newfstatat, -100, p, (long)buf, 0, 0, 0);
        expect_err("getdents64(bad buf)", SYS_getdents64, open("/", 0x10000), p, 4096, 0, 0, 0);
        expect_err("futex(bad addr)", SYS_futex, p, 0, 0, 0, 0, 0);
        expect_err("getrandom(bad)", SYS_getrandom, p, 64, 0, 0, 0, 0);
        expect_err("utimensat(bad)", SYS_utimensat, -100, (long)"/tmp", p, 0, 0, 0);
        expect_err("statfs(bad)", SYS_statfs, p, (long)buf, 0, 0, 0, 0);
        expect_err("sigaltstack(bad)", SYS_sigaltstack, p, 0, 0, 0, 0, 0);
        expect_err("sched_getaffinity(bad)", SYS_sched_getaffinity, 0, 8, p, 0, 0, 0);
        expect_err("prlimit64(bad)", SYS_prlimit64, 0, 7, 0, p, 0, 0);
        expect_err("set_tid/clock_nanosleep(bad)", SYS_clock_nanosleep, 1, 0, p, 0, 0, 0);
        expect_err("pipe2(bad)", SYS_pipe2, p, 0, 0, 0, 0, 0);
        expect_err("statx(bad)", SYS_statx, -100, p, 0, 0x7ff, (long)buf, 0);
        expect_err("mount(bad)", SYS_mount, p, p, p, 0, 0, 0);
        expect_err("setitimer(bad)", SYS_setitimer, 0, p, 0, 0, 0, 0);
        expect_err("rt_sigtimedwait(bad)", SYS_rt_sigtimedwait, p, 0, 0, 8, 0, 0);
    }
    /* Invalid flags, fds and sizes. */
    expect_err("read(bad fd)", SYS_read, 12345, (long)buf, 10, 0, 0, 0);
    expect_err("close(bad fd)", SYS_close, -5, 0, 0, 0, 0, 0);
    expect_err("mmap(len 0)", SYS_mmap, 0, 0, 3, 0x22, -1, 0);
    expect_err("mmap(huge)", SYS_mmap, 0, HUGE, 3, 0x22, -1, 0);
    expect_err("mmap(bad flags)", SYS_mmap, 0, 4096, 3, 0, -1, 0);
    expect_err("mmap(fixed kernel)", SYS_mmap, KERNEL, 4096, 3, 0x32, -1, 0);
    expect_err("munmap(unaligned)", SYS_munmap, 1, 4096, 0, 0, 0, 0);
    expect_err("mprotect(bad prot)", SYS_mprotect, 0x400000, 4096, 0xff, 0, 0, 0);
    expect_err("kill(bad sig)", SYS_kill, getpid(), 1000, 0, 0, 0, 0);
    expect_err("kill(no pid)", SYS_kill, 999999, 0, 0, 0, 0, 0);
    expect_err("rt_sigaction(SIGKILL)", SYS_rt_sigaction, 9, (long)buf, 0, 8, 0, 0);
    expect_err("fcntl(bad cmd)", SYS_fcntl, 0, 9999, 0, 0, 0, 0);
    expect_err("dup2(bad)", SYS_dup2, 9999, 3, 0, 0, 0, 0);
    expect_err("lseek(bad whence)", SYS_lseek, fd, 0, 99, 0, 0, 0);
    expect_err("arch_prctl(bad)", SYS_arch_prctl, 0x9999, 0, 0, 0, 0, 0);
    expect_err("arch_prctl(kernel fs)", SYS_arch_prctl, 0x1002, KERNEL, 0, 0, 0, 0);
    expect_err("clone(THREAD without VM)", SYS_clone, 0x10000, 0, 0, 0, 0, 0);
    expect_err("unknown syscall", 400, 0, 0, 0, 0, 0, 0);
    expect_err("wait4(no child)", SYS_wait4, -1, 0, 1, 0, 0, 0);
    expect_err("sched_setaffinity(empty)", SYS_sched_setaffinity, 0, 8, (long)"\0\0\0\0\0\0\0\0", 0, 0, 0);
    /* Huge ranges over an empty part of the address space come back at once (found by
     * sysfuzz: munmap walked them page by page with interrupts off until the watchdog
     * panicked): munmap succeeds, mprotect and madvise(DONTNEED) say ENOMEM. */
    {
        long far = 0x100000000000L, big = 1L << 45;
        long r = syscall(SYS_munmap, far, big);
        calls++;
        if (r != 0) {
            wrong++;
            printf("UNEXPECTED munmap(huge empty range) returned %ld (errno %d)\n", r, errno);
        }
        expect_err("mprotect(huge empty range)", SYS_mprotect, far, big, 1, 0, 0, 0);
        expect_err("madvise(huge empty range)", SYS_madvise, far, big, 4, 0, 0, 0);
    }
    if (wrong) {
        printf("FAIL abuse: %d of %d calls did not fail\n", wrong, calls);
        return 1;
    }
    printf("PASS abuse %d calls\n", calls);
    return 0;
}
