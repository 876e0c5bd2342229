/* Devices and pseudo files: /dev/null, zero, full, random, urandom, getrandom,
 * /proc/self/..., /proc/meminfo, cpuinfo, mounts, uptime, version, uname, hostname. */
#include "check.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <termios.h>

/* What Linux calls this architecture (uname -m) and the /proc/cpuinfo line listing CPU
 * features, for the architecture this program was built for. */
#if defined(__aarch64__)
#define ARCH_MACHINE "aarch64"
#define CPUINFO_FEATURES "Features"
#else
#define ARCH_MACHINE "x86_64"
#define CPUINFO_FEATURES "flags"
#endif

static int all_zero(const char *b, int n) {
    for (int i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

int main(int argc, char **argv) {
    (void)argc;
    check_init("dev");
    char buf[8192], b2[8192];
    struct stat st;
    int fd = open("/dev/null", O_RDWR);
    CHECK("null_open", fd >= 0);
    CHECK("null_write", write(fd, "abc", 3) == 3);
    CHECK("null_read_eof", read(fd, buf, sizeof buf) == 0);
    CHECK("null_chardev_1_3", fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
    struct termios tio;
    CHECK_ERR("null_not_a_tty", ioctl(fd, TCGETS, &tio), ENOTTY);
    CHECK("null_isatty_false", !isatty(fd));
    close(fd);
    fd = open("/dev/zero", O_RDWR);
    memset(buf, 1, sizeof buf);
    CHECK("zero_reads_zeros", read(fd, buf, sizeof buf) == sizeof buf && all_zero(buf, sizeof buf));
    CHECK("zero_write", write(fd, "x", 1) == 1);
    CHECK("zero_chardev_1_5", fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 5);
    close(fd);
    fd = open("/dev/full", O_RDWR);
    CHECK_ERR("full_write_enospc", write(fd, "x", 1), ENOSPC);
    memset(buf, 1, 100);
    CHECK("full_reads_zeros", read(fd, buf, 100) == 100 && all_zero(buf, 100));
    close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    CHECK("urandom_read", read(fd, buf, 256) == 256 && read(fd, b2, 256) == 256 && memcmp(buf, b2, 256) != 0 && !all_zero(buf, 256));
    close(fd);
    fd = open("/dev/random", O_RDONLY);
    CHECK("random_read", read(fd, buf, 64) == 64 && !all_zero(buf, 64));
    close(fd);
    CHECK("getrandom", syscall(SYS_getrandom, buf, 256, 0) == 256 && !all_zero(buf, 256));
    CHECK("getrandom_nonblock", syscall(SYS_getrandom, buf, 16, 1 /* GRND_NONBLOCK */) == 16);
    CHECK("getrandom_large", syscall(SYS_getrandom, buf, sizeof buf, 0) > 0);
    CHECK_ERR("getrandom_bad_flags", syscall(SYS_getrandom, buf, 16, 0x100), EINVAL);
    CHECK_ERR("getrandom_bad_buf", syscall(SYS_getrandom, (void *)16, 16, 0), EFAULT);
    int ones = 0;
    syscall(SYS_getrandom, buf, 4096, 0);
    for (int i = 0; i < 4096; i++) ones += __builtin_popcount((unsigned char)buf[i]);
    CHECKF("getrandom_balanced_bits", ones > 4096 * 4 - 1000 && ones < 4096 * 4 + 1000, "%d of %d bits set", ones, 4096 * 8);
    fd = open("/dev/tty", O_RDWR);
    if (fd >= 0) close(fd);
    CHECK("dev_tty_exists", stat("/dev/tty", &st) == 0 && S_ISCHR(st.st_mode));
    CHECK("dev_console_exists", stat("/dev/console", &st) == 0 && S_ISCHR(st.st_mode));

    /* /proc/self */
    char path[64];
    long n = read_file("/proc/self/stat", buf, sizeof buf);
    CHECK("proc_self_stat_pid", n > 0 && atoi(buf) == getpid());
    char *rp = n > 0 ? strrchr(buf, ')') : 0;
    CHECK("proc_self_stat_state_ppid", rp && rp[2] == 'R' && atoi(rp + 4) == getppid());
    n = read_file("/proc/self/status", buf, sizeof buf);
    char *pl = n > 0 ? strstr(buf, "\nPid:") : 0;
    CHECK("proc_self_status_pid", pl && atoi(pl + 5) == getpid());
    char *ul = n > 0 ? strstr(buf, "\nUid:") : 0;
    CHECK("proc_self_status_uid", ul && atoi(ul + 5) == (int)getuid());
    n = read_file("/proc/self/cmdline", buf, sizeof buf);
    CHECK("proc_self_cmdline", n > 0 && strcmp(buf, argv[0]) == 0);
    n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n >= 0) buf[n] = 0;
    CHECKF("proc_self_exe", n > 0 && strstr(buf, "t_dev") != 0, "readlink gave %.80s", n > 0 ? buf : "(error)");
    chdir("/tmp");
    n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
    CHECK("proc_self_cwd", n == 4 && memcmp(buf, "/tmp", 4) == 0);
    int tfd = open("/tmp/t_dev.file", O_RDWR | O_CREAT | O_TRUNC, 0644);
    snprintf(path, sizeof path, "/proc/self/fd/%d", tfd);
    n = readlink(path, buf, sizeof buf - 1);
    CHECK("proc_self_fd_link", n == 15 && memcmp(buf, "/tmp/t_dev.file", 15) == 0);
    int fd2 = open(path, O_RDONLY);
    CHECK("proc_self_fd_reopen", fd2 >= 0 && fstat(fd2, &st) == 0);
    struct stat st2;
    CHECK("proc_self_fd_same_file", fd2 >= 0 && fstat(tfd, &st2) == 0 && st.st_ino == st2.st_ino);
    close(fd2);
    close(tfd);
    unlink("/tmp/t_dev.file");
    n = read_file("/proc/self/maps", buf, sizeof buf);
    CHECK("proc_self_maps_stack", n > 0 && strstr(buf, "[stack]") != 0);
    char lp[64];
    snprintf(lp, sizeof lp, "%lx-", (unsigned long)&buf & ~0xfffUL);
    int found = 0;
    for (char *line = buf; n > 0 && line && *line; line = strchr(line, '\n'), line = line ? line + 1 : 0) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= (unsigned long)&buf && (unsigned long)&buf < hi && line[strcspn(line, " ") + 1] == 'r' && line[strcspn(line, " ") + 2] == 'w') found = 1;
    }
    CHECK("proc_self_maps_covers_stack_var", found);
    snprintf(path, sizeof path, "/proc/%d/comm", getpid());
    CHECK("proc_pid_comm", read_file(path, buf, sizeof buf) > 0 && strncmp(buf, "t_dev", 5) == 0);
    CHECK("proc_self_is_link_to_pid", readlink("/proc/self", buf, sizeof buf) > 0 && atoi(buf) == getpid());
    CHECK_ERR("proc_missing_pid", open("/proc/999999/stat", O_RDONLY), ENOENT);

    /* system-wide /proc files */
    n = read_file("/proc/meminfo", buf, sizeof buf);
    char *mt = n > 0 ? strstr(buf, "MemTotal:") : 0;
    char *mf = n > 0 ? strstr(buf, "MemFree:") : 0;
    CHECK("proc_meminfo", mt && mf && atol(mt + 9) > 0 && atol(mf + 8) > 0 && atol(mf + 8) <= atol(mt + 9));
    n = read_file("/proc/cpuinfo", buf, sizeof buf);
    CHECK("proc_cpuinfo", n > 0 && strstr(buf, "processor") && strstr(buf, CPUINFO_FEATURES));
    n = read_file("/proc/mounts", buf, sizeof buf);
    CHECK("proc_mounts_root", n > 0 && strstr(buf, " / ") != 0);
    CHECK("proc_mounts_proc", n > 0 && strstr(buf, " /proc proc ") != 0);
    n = read_file("/proc/uptime", buf, sizeof buf);
    double up = -1, idle = -1;
    CHECK("proc_uptime", n > 0 && sscanf(buf, "%lf %lf", &up, &idle) == 2 && up > 0);
    n = read_file("/proc/loadavg", buf, sizeof buf);
    double l1 = -1;
    CHECK("proc_loadavg", n > 0 && sscanf(buf, "%lf", &l1) == 1 && l1 >= 0);
    n = read_file("/proc/version", buf, sizeof buf);
    CHECK("proc_version", n > 0 && strncmp(buf, "Linux version ", 14) == 0);
    n = read_file("/proc/filesystems", buf, sizeof buf);
    CHECK("proc_filesystems", n > 0 && strstr(buf, "proc") != 0);
    struct statfs sf;
    CHECK("statfs_proc_magic", statfs("/proc", &sf) == 0 && sf.f_type == 0x9fa0);
    CHECK("statfs_tmp", statfs("/tmp", &sf) == 0 && sf.f_bsize > 0);

    /* uname and hostname */
    struct utsname u;
    CHECK("uname", uname(&u) == 0 && strcmp(u.sysname, "Linux") == 0 && strcmp(u.machine, ARCH_MACHINE) == 0 && u.release[0]);
    CHECK("uname_release_numeric", u.release[0] >= '1' && u.release[0] <= '9' && strchr(u.release, '.'));
    char oldname[65];
    strcpy(oldname, u.nodename);
    CHECK("sethostname", sethostname("t-dev-host", 10) == 0 && uname(&u) == 0 && strcmp(u.nodename, "t-dev-host") == 0);
    CHECK("gethostname", gethostname(buf, sizeof buf) == 0 && strcmp(buf, "t-dev-host") == 0);
    CHECK_ERR("sethostname_too_long", sethostname(buf, 200), EINVAL);
    sethostname(oldname, strlen(oldname));
    return check_done();
}
