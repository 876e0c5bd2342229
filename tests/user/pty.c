/* Pseudo-terminals: /dev/ptmx and /dev/pts/N, the line discipline through a pty, window
 * size, hangup, controlling terminals and background job control on a pty. Prints
 * "PASS: pty.<name>" or "FAIL: pty.<name>: reason" per check, "pty: N passed, M failed"
 * at the end; exits 1 if anything failed.
 * Runs on Linux too (musl-gcc -static -O2 -o /tmp/pty tests/user/pty.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

static void pass(const char *n) {
    printf("PASS: pty.%s\n", n);
    fflush(stdout);
    passed++;
}

static void fail(const char *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *n, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("FAIL: pty.%s: %s\n", n, buf);
    fflush(stdout);
    failed++;
}

#define CHECK(name, cond, ...)       \
    do {                             \
        if (cond)                    \
            pass(name);              \
        else                         \
            fail(name, __VA_ARGS__); \
    } while (0)

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Reads what is available within `ms` (at most n-1 bytes, NUL-terminated). */
static int read_avail(int fd, char *buf, int n, int ms) {
    int got = 0;
    for (int waited = 0; waited <= ms && got < n - 1;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 10);
        if (r > 0 && (p.revents & POLLIN)) {
            ssize_t k = read(fd, buf + got, n - 1 - got);
            if (k <= 0)
                break;
            got += k;
            continue;
        }
        if (r > 0 && (p.revents & (POLLHUP | POLLERR)))
            break;
        waited += 10;
        if (got > 0 && waited > 50)
            break;
    }
    buf[got] = 0;
    return got;
}

static int new_pty(int *master, int *slave, char *name) {
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    if (*master < 0)
        return -1;
    if (grantpt(*master) < 0 || unlockpt(*master) < 0)
        return -1;
    if (ptsname_r(*master, name, 64) != 0)
        return -1;
    *slave = open(name, O_RDWR | O_NOCTTY);
    return *slave < 0 ? -1 : 0;
}

static pid_t wait_for(pid_t pid, int *st, int opts) {
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(pid, st, opts | WNOHANG);
        if (r != 0)
            return r;
        msleep(10);
    }
    return 0;
}

static void test_basics(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK("open_ptmx", m >= 0, "posix_openpt: %s", strerror(errno));
    if (m < 0)
        return;
    unsigned n = 9999;
    int r = ioctl(m, TIOCGPTN, &n);
    char name[64] = "";
    ptsname_r(m, name, sizeof name);
    char want[64];
    snprintf(want, sizeof want, "/dev/pts/%u", n);
    CHECK("tiocgptn_ptsname", r == 0 && strcmp(name, want) == 0, "TIOCGPTN %d (%u), ptsname %s", r, n, name);
    struct stat st;
    CHECK("pts_node_exists", stat(name, &st) == 0 && S_ISCHR(st.st_mode), "stat %s: %s", name, strerror(errno));
    int s = open(name, O_RDWR | O_NOCTTY);
    CHECK("locked_slave_eio", s < 0 && errno == EIO, "opening a locked slave: fd %d errno %d", s, errno);
    if (s >= 0)
        close(s);
    CHECK("grantpt_unlockpt", grantpt(m) == 0 && unlockpt(m) == 0, "%s", strerror(errno));
    s = open(name, O_RDWR | O_NOCTTY);
    CHECK("slave_open", s >= 0, "open %s: %s", name, strerror(errno));
    if (s < 0)
        return;
    CHECK("isatty_both", isatty(s) && isatty(m), "isatty slave %d master %d", isatty(s), isatty(m));
    struct stat a, b;
    fstat(s, &a);
    stat(name, &b);
    CHECK("slave_fstat_matches_node", a.st_rdev == b.st_rdev && S_ISCHR(a.st_mode), "rdev %#lx vs %#lx", (unsigned long)a.st_rdev, (unsigned long)b.st_rdev);
    char *tn = ttyname(s);
    CHECK("ttyname", tn && strcmp(tn, name) == 0, "ttyname %s, want %s", tn ? tn : "(null)", name);

    char buf[256];
    write(s, "hi\n", 3);
    int k = read_avail(m, buf, sizeof buf, 500);
    CHECK("slave_output_onlcr", k == 4 && memcmp(buf, "hi\r\n", 4) == 0, "master read %d bytes \"%s\"", k, buf);

    write(m, "abc\r", 4);
    k = read_avail(s, buf, sizeof buf, 500);
    CHECK("master_input_icrnl_canon", k == 4 && memcmp(buf, "abc\n", 4) == 0, "slave read %d bytes \"%s\"", k, buf);
    k = read_avail(m, buf, sizeof buf, 300);
    CHECK("echo_to_master", k == 5 && memcmp(buf, "abc\r\n", 5) == 0, "master read %d bytes of echo \"%s\"", k, buf);

    /* canonical: a partial line is not readable */
    write(m, "par", 3);
    struct pollfd p = {s, POLLIN, 0};
    int pr = poll(&p, 1, 100);
    CHECK("canon_partial_line_not_ready", pr == 0, "poll on the slave = %d with a partial line", pr);
    write(m, "\x7f" "X\n", 3);
    k = read_avail(s, buf, sizeof buf, 500);
    CHECK("erase", k == 4 && memcmp(buf, "paX\n", 4) == 0, "slave read %d bytes \"%s\"", k, buf);
    read_avail(m, buf, sizeof buf, 100);
    write(m, "\x04", 1);
    k = read(s, buf, sizeof buf);
    CHECK("veof_reads_zero", k == 0, "read after ^D = %d", k);

    /* raw mode */
    struct termios t, saved;
    tcgetattr(s, &t);
    saved = t;
    cfmakeraw(&t);
    CHECK("tcsetattr_raw", tcsetattr(s, TCSANOW, &t) == 0, "%s", strerror(errno));
    write(m, "q", 1);
    k = read_avail(s, buf, sizeof buf, 500);
    CHECK("raw_byte_at_once", k == 1 && buf[0] == 'q', "slave read %d bytes", k);
    k = read_avail(m, buf, sizeof buf, 100);
    CHECK("raw_no_echo", k == 0, "master got %d echoed bytes", k);
    write(s, "a\nb", 3);
    k = read_avail(m, buf, sizeof buf, 300);
    CHECK("raw_no_onlcr", k == 3 && memcmp(buf, "a\nb", 3) == 0, "master read %d bytes", k);
    tcsetattr(s, TCSANOW, &saved);
    struct termios t2;
    tcgetattr(s, &t2);
    CHECK("tcgetattr_roundtrip", t2.c_lflag == saved.c_lflag && t2.c_oflag == saved.c_oflag, "lflag %#x vs %#x", t2.c_lflag, saved.c_lflag);

    /* window size, set on the master, seen on the slave */
    struct winsize ws = {33, 101, 0, 0}, ws2 = {0};
    ioctl(m, TIOCSWINSZ, &ws);
    ioctl(s, TIOCGWINSZ, &ws2);
    CHECK("winsize", ws2.ws_row == 33 && ws2.ws_col == 101, "slave sees %ux%u", ws2.ws_row, ws2.ws_col);

    /* a lot of output: the writer blocks until the master reads, nothing is lost */
    pid_t c = fork();
    if (c == 0) {
        char big[1000];
        memset(big, 'z', sizeof big);
        for (int i = 0; i < 100; i++)
            if (write(s, big, sizeof big) != sizeof big)
                _exit(1);
        _exit(0);
    }
    long total = 0;
    for (int i = 0; i < 2000 && total < 100000; i++) {
        k = read_avail(m, buf, sizeof buf, 50);
        total += k;
    }
    int wst;
    pid_t wr = wait_for(c, &wst, 0);
    CHECK("bulk_output", total == 100000 && wr == c && WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "master read %ld of 100000 bytes, writer status %#x", total, wst);

    /* hangup: the master's close makes slave reads return 0 and writes fail */
    close(m);
    k = read(s, buf, sizeof buf);
    CHECK("hangup_read_eof", k == 0, "slave read after master close = %d (%s)", k, k < 0 ? strerror(errno) : "");
    errno = 0;
    k = write(s, "x", 1);
    CHECK("hangup_write_eio", k < 0 && errno == EIO, "slave write after master close = %d errno %d", k, errno);
    close(s);
    msleep(20);
    CHECK("pts_node_removed", stat(name, &st) < 0 && errno == ENOENT, "%s still exists after both sides closed", name);
}

static void test_master_eio(void) {
    int m, s;
    char name[64];
    if (new_pty(&m, &s, name) < 0) {
        fail("master_eio_after_slave_close", "new_pty: %s", strerror(errno));
        return;
    }
    close(s);
    char b;
    errno = 0;
    int k = read(m, &b, 1);
    CHECK("master_eio_after_slave_close", k < 0 && errno == EIO, "master read = %d errno %d", k, errno);
    struct pollfd p = {m, POLLIN, 0};
    poll(&p, 1, 100);
    CHECK("master_pollhup", p.revents & POLLHUP, "revents %#x", p.revents);
    close(m);
}

static void test_many(void) {
    int fds[64];
    unsigned idx[64];
    int ok = 1, n = 0;
    for (; n < 64; n++) {
        fds[n] = posix_openpt(O_RDWR | O_NOCTTY);
        if (fds[n] < 0 || ioctl(fds[n], TIOCGPTN, &idx[n]) < 0) {
            ok = 0;
            break;
        }
        for (int j = 0; j < n; j++)
            if (idx[j] == idx[n])
                ok = 0;
    }
    CHECK("many_ptys_distinct", ok && n == 64, "opened %d of 64 (%s)", n, strerror(errno));
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

static volatile sig_atomic_t got_sig;
static void on_sig(int s) {
    got_sig = s;
}

/* In a child that becomes a session leader: the pty's slave as controlling terminal. */
static int child_ctty(const char *name, int noctty_then_ioctl) {
    if (setsid() < 0)
        return -1;
    int fd = open(name, O_RDWR | (noctty_then_ioctl ? O_NOCTTY : 0));
    if (fd < 0)
        return -1;
    if (noctty_then_ioctl && ioctl(fd, TIOCSCTTY, 0) < 0)
        return -1;
    return fd;
}

static void test_ctty(void) {
    int m, s;
    char name[64];
    if (new_pty(&m, &s, name) < 0) {
        fail("ctty_open", "new_pty: %s", strerror(errno));
        return;
    }
    int st;
    /* 1: setsid + open acquires the terminal */
    pid_t c = fork();
    if (c == 0) {
        int fd = child_ctty(name, 0);
        if (fd < 0)
            _exit(10);
        if (tcgetsid(fd) != getpid())
            _exit(11);
        if (tcgetpgrp(fd) != getpgrp())
            _exit(12);
        int t = open("/dev/tty", O_RDWR);
        if (t < 0)
            _exit(13);
        _exit(0);
    }
    wait_for(c, &st, 0);
    CHECK("ctty_by_open", WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exit %d (10 open, 11 tcgetsid, 12 tcgetpgrp, 13 /dev/tty)", WEXITSTATUS(st));
    /* 2: O_NOCTTY + TIOCSCTTY; a terminal that is not ours answers ENOTTY */
    c = fork();
    if (c == 0) {
        if (setsid() < 0)
            _exit(20);
        int fd = open(name, O_RDWR | O_NOCTTY);
        if (fd < 0)
            _exit(21);
        if (tcgetpgrp(fd) >= 0 || errno != ENOTTY)
            _exit(22);
        if (open("/dev/tty", O_RDWR) >= 0 || errno != ENXIO)
            _exit(23);
        if (ioctl(fd, TIOCSCTTY, 0) < 0)
            _exit(24);
        if (tcgetsid(fd) != getpid())
            _exit(25);
        _exit(0);
    }
    wait_for(c, &st, 0);
    CHECK("ctty_by_tiocsctty", WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exit %d (22 tcgetpgrp on a foreign tty, 23 /dev/tty without ctty, 24 TIOCSCTTY)", WEXITSTATUS(st));
    /* 3: tcsetpgrp rules, ^C to the foreground group, background read/write */
    int pfd[2];
    pipe(pfd);
    c = fork();
    if (c == 0) {
        close(pfd[0]);
        int fd = child_ctty(name, 0);
        if (fd < 0)
            _exit(30);
        signal(SIGTTOU, SIG_IGN); /* ours: we change the foreground group from outside it */
        /* a background grandchild reading the terminal stops with SIGTTIN */
        pid_t g = fork();
        if (g == 0) {
            setpgid(0, 0);
            signal(SIGTTOU, SIG_DFL);
            char b;
            read(fd, &b, 1);
            _exit(0);
        }
        setpgid(g, g);
        int s2;
        pid_t r = wait_for(g, &s2, WUNTRACED);
        char res[8] = "-------";
        res[0] = (r == g && WIFSTOPPED(s2) && WSTOPSIG(s2) == SIGTTIN) ? 'y' : 'n';
        /* tcsetpgrp to it: allowed (same session); then continue it: its read now waits */
        res[1] = tcsetpgrp(fd, g) == 0 && tcgetpgrp(fd) == g ? 'y' : 'n';
        kill(g, SIGCONT);
        msleep(50);
        r = waitpid(g, &s2, WNOHANG | WUNTRACED);
        res[2] = r == 0 ? 'y' : 'n'; /* blocked in read, not stopped */
        write(pfd[1], res, 3);       /* the parent types a line for it now */
        r = wait_for(g, &s2, 0);
        res[3] = (r == g && WIFEXITED(s2)) ? 'y' : 'n';
        tcsetpgrp(fd, getpgrp());
        /* an ignored SIGTTIN: the background read fails with EIO */
        g = fork();
        if (g == 0) {
            setpgid(0, 0);
            signal(SIGTTIN, SIG_IGN);
            char b;
            ssize_t k = read(fd, &b, 1);
            _exit(k < 0 && errno == EIO ? 0 : 1);
        }
        setpgid(g, g);
        r = wait_for(g, &s2, 0);
        res[4] = (r == g && WIFEXITED(s2) && WEXITSTATUS(s2) == 0) ? 'y' : 'n';
        /* TOSTOP: a background write stops with SIGTTOU */
        struct termios t;
        tcgetattr(fd, &t);
        t.c_lflag |= TOSTOP;
        tcsetattr(fd, TCSANOW, &t);
        g = fork();
        if (g == 0) {
            setpgid(0, 0);
            signal(SIGTTOU, SIG_DFL);
            write(fd, "bg\n", 3);
            _exit(0);
        }
        setpgid(g, g);
        r = wait_for(g, &s2, WUNTRACED);
        res[5] = (r == g && WIFSTOPPED(s2) && WSTOPSIG(s2) == SIGTTOU) ? 'y' : 'n';
        kill(g, SIGKILL);
        waitpid(g, &s2, 0);
        t.c_lflag &= ~TOSTOP;
        tcsetattr(fd, TCSANOW, &t);
        /* tcsetpgrp to a group that does not exist fails */
        res[6] = tcsetpgrp(fd, 999999) < 0 ? 'y' : 'n';
        write(pfd[1], res + 3, 4);
        /* now wait for ^C as the foreground group */
        signal(SIGINT, SIG_DFL);
        for (;;)
            pause();
    }
    close(pfd[1]);
    char res[8] = {0};
    char buf[256];
    int k = 0;
    for (int i = 0; i < 500 && k < 3; i++) {
        int r = read(pfd[0], res + k, 3 - k);
        if (r > 0)
            k += r;
    }
    write(m, "line\n", 5);
    for (int i = 0; i < 500 && k < 7; i++) {
        int r = read(pfd[0], res + k, 7 - k);
        if (r > 0)
            k += r;
        else
            break;
    }
    CHECK("bg_read_sigttin", res[0] == 'y', "a background read did not stop with SIGTTIN (%s)", res);
    CHECK("tcsetpgrp_same_session", res[1] == 'y', "tcsetpgrp to a group of the session failed (%s)", res);
    CHECK("fg_read_blocks", res[2] == 'y', "the continued foreground reader did not wait for input (%s)", res);
    CHECK("fg_read_gets_line", res[3] == 'y', "the foreground reader did not get the typed line (%s)", res);
    CHECK("bg_read_ignored_eio", res[4] == 'y', "a background read ignoring SIGTTIN did not fail with EIO (%s)", res);
    CHECK("bg_write_tostop_sigttou", res[5] == 'y', "a background write with TOSTOP did not stop with SIGTTOU (%s)", res);
    CHECK("tcsetpgrp_bad_group", res[6] == 'y', "tcsetpgrp to a missing group succeeded (%s)", res);
    read_avail(m, buf, sizeof buf, 100);
    write(m, "\x03", 1);
    pid_t r = wait_for(c, &st, 0);
    CHECK("intr_char_sigint", r == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGINT, "waitpid %d status %#x", r, st);

    /* SIGWINCH to the foreground group; SIGHUP to the session leader when the master goes */
    int p2[2];
    pipe(p2);
    c = fork();
    if (c == 0) {
        close(p2[0]);
        close(m); /* the parent's close must be the last one */
        close(s);
        signal(SIGWINCH, on_sig);
        signal(SIGHUP, on_sig);
        int fd = child_ctty(name, 1);
        if (fd < 0)
            _exit(40);
        write(p2[1], "r", 1);
        while (got_sig != SIGWINCH)
            pause();
        write(p2[1], "w", 1);
        while (got_sig != SIGHUP)
            pause();
        write(p2[1], "h", 1);
        _exit(0);
    }
    close(p2[1]);
    char b = 0;
    char one[2] = {0};
    read_avail(p2[0], one, 2, 3000);
    struct winsize ws = {40, 120, 0, 0};
    ioctl(m, TIOCSWINSZ, &ws);
    one[0] = 0;
    read_avail(p2[0], one, 2, 3000);
    b = one[0];
    CHECK("sigwinch", b == 'w', "the foreground group got no SIGWINCH (%c)", b ? b : '0');
    close(s);
    close(m);
    one[0] = 0;
    read_avail(p2[0], one, 2, 3000);
    b = one[0];
    CHECK("hangup_sighup_leader", b == 'h', "the session leader got no SIGHUP when the master closed (%c)", b ? b : '0');
    wait_for(c, &st, 0);
    close(p2[0]);
    close(pfd[0]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGTTOU, SIG_IGN);
    test_basics();
    test_master_eio();
    test_many();
    test_ctty();
    printf("pty: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
