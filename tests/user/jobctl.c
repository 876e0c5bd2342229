/* Job control semantics: stop/continue signals, wait4/waitid reports, SIGCHLD and
 * SA_NOCLDSTOP, pending-signal discarding, orphaned process groups, multi-threaded stops,
 * restarted system calls. Prints "PASS: jobctl.<name>" or "FAIL: jobctl.<name>: reason"
 * per check and "jobctl: N passed, M failed" at the end; exits 1 if anything failed.
 * Runs on Linux too (musl-gcc -static -O2 -o /tmp/jobctl tests/user/jobctl.c -lpthread). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

static void pass(const char *n) {
    printf("PASS: jobctl.%s\n", n);
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
    printf("FAIL: jobctl.%s: %s\n", n, buf);
    fflush(stdout);
    failed++;
}

#define CHECK(name, cond, ...)                 \
    do {                                       \
        if (cond)                              \
            pass(name);                        \
        else                                   \
            fail(name, __VA_ARGS__);           \
    } while (0)

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* waitpid that retries EINTR and gives up after ~5 s (WNOHANG polling) */
static pid_t wait_for(pid_t pid, int *st, int opts) {
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(pid, st, opts | WNOHANG);
        if (r != 0)
            return r;
        msleep(10);
    }
    return 0;
}

static void reap(pid_t pid) {
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
}

/* A child that writes one byte to fd every 10 ms forever. */
static pid_t ticker(int fd, int own_group) {
    pid_t p = fork();
    if (p == 0) {
        if (own_group)
            setpgid(0, 0);
        for (;;) {
            if (write(fd, "t", 1) < 0 && errno != EAGAIN)
                _exit(3);
            msleep(10);
        }
    }
    if (own_group)
        setpgid(p, p);
    return p;
}

static int drain(int fd) {
    char buf[4096];
    int total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return total;
        total += n;
    }
}

static volatile sig_atomic_t chld_count;
static void on_chld(int s) {
    (void)s;
    chld_count++;
}

static void set_chld_handler(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sa.sa_flags = flags | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
}

static void test_stop_cont(void) {
    int pfd[2];
    if (pipe2(pfd, O_NONBLOCK) < 0) {
        fail("stop_wait", "pipe: %s", strerror(errno));
        return;
    }
    set_chld_handler(0);
    pid_t c = ticker(pfd[1], 0);
    msleep(50);
    chld_count = 0;
    kill(c, SIGSTOP);
    int st = 0;
    pid_t r = wait_for(c, &st, WUNTRACED);
    CHECK("stop_wait", r == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "waitpid(WUNTRACED) = %d, status %#x", r, st);
    CHECK("stop_status_word", st == 0x137f, "status %#x, expected 0x137f", st);
    msleep(20);
    CHECK("stop_sigchld", chld_count >= 1, "parent got %d SIGCHLD for the stop", (int)chld_count);
    r = waitpid(c, &st, WUNTRACED | WNOHANG);
    CHECK("stop_reported_once", r == 0, "second waitpid(WUNTRACED|WNOHANG) = %d status %#x", r, st);
    r = waitpid(c, &st, WNOHANG);
    CHECK("stop_not_without_wuntraced", r == 0, "waitpid(WNOHANG) without WUNTRACED = %d", r);
    drain(pfd[0]);
    msleep(200);
    int n = drain(pfd[0]);
    CHECK("stopped_does_not_run", n == 0, "a stopped child wrote %d bytes in 200 ms", n);
    chld_count = 0;
    kill(c, SIGCONT);
    r = wait_for(c, &st, WCONTINUED);
    CHECK("cont_wait", r == c && WIFCONTINUED(st), "waitpid(WCONTINUED) = %d, status %#x", r, st);
    CHECK("cont_status_word", st == 0xffff, "status %#x, expected 0xffff", st);
    msleep(20);
    CHECK("cont_sigchld", chld_count >= 1, "parent got %d SIGCHLD for the continue", (int)chld_count);
    r = waitpid(c, &st, WCONTINUED | WNOHANG);
    CHECK("cont_reported_once", r == 0, "second waitpid(WCONTINUED|WNOHANG) = %d", r);
    msleep(100);
    n = drain(pfd[0]);
    CHECK("continued_runs", n > 0, "a continued child wrote nothing in 100 ms");
    /* stop then continue before the parent waits: only the continue is reported */
    kill(c, SIGSTOP);
    msleep(50);
    kill(c, SIGCONT);
    msleep(50);
    r = waitpid(c, &st, WUNTRACED | WNOHANG);
    CHECK("stop_report_dropped_by_cont", r == 0, "a stop already continued was reported: %d status %#x", r, st);
    r = waitpid(c, &st, WCONTINUED | WNOHANG);
    CHECK("cont_after_unreported_stop", r == c && WIFCONTINUED(st), "waitpid(WCONTINUED) = %d status %#x", r, st);
    /* SIGKILL ends a stopped process */
    kill(c, SIGSTOP);
    wait_for(c, &st, WUNTRACED);
    kill(c, SIGKILL);
    r = wait_for(c, &st, 0);
    CHECK("kill_stopped", r == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "waitpid = %d status %#x", r, st);
    close(pfd[0]);
    close(pfd[1]);
    signal(SIGCHLD, SIG_DFL);
}

static void test_tstp_ttin_ttou(void) {
    const int sigs[] = {SIGTSTP, SIGTTIN, SIGTTOU};
    const char *names[] = {"tstp_stops", "ttin_stops", "ttou_stops"};
    for (int i = 0; i < 3; i++) {
        int pfd[2];
        pipe2(pfd, O_NONBLOCK);
        pid_t c = ticker(pfd[1], 1); /* own group, parent in another group: not orphaned */
        msleep(30);
        kill(c, sigs[i]);
        int st = 0;
        pid_t r = wait_for(c, &st, WUNTRACED);
        CHECK(names[i], r == c && WIFSTOPPED(st) && WSTOPSIG(st) == sigs[i], "waitpid = %d status %#x", r, st);
        reap(c);
        close(pfd[0]);
        close(pfd[1]);
    }
    /* a caught SIGTSTP does not stop */
    pid_t c = fork();
    if (c == 0) {
        signal(SIGTSTP, on_chld);
        chld_count = 0;
        setpgid(0, 0);
        raise(SIGTSTP);
        _exit(chld_count == 1 ? 7 : 8);
    }
    int st = 0;
    pid_t r = wait_for(c, &st, WUNTRACED);
    CHECK("tstp_caught", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 7, "waitpid = %d status %#x", r, st);
    /* an ignored SIGTSTP does not stop */
    c = fork();
    if (c == 0) {
        signal(SIGTSTP, SIG_IGN);
        setpgid(0, 0);
        raise(SIGTSTP);
        _exit(9);
    }
    r = wait_for(c, &st, WUNTRACED);
    CHECK("tstp_ignored", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 9, "waitpid = %d status %#x", r, st);
}

static void test_nocldstop(void) {
    set_chld_handler(SA_NOCLDSTOP);
    int pfd[2];
    pipe2(pfd, O_NONBLOCK);
    pid_t c = ticker(pfd[1], 0);
    msleep(30);
    chld_count = 0;
    kill(c, SIGSTOP);
    int st = 0;
    pid_t r = wait_for(c, &st, WUNTRACED);
    msleep(30);
    CHECK("nocldstop_stop", r == c && WIFSTOPPED(st) && chld_count == 0, "waitpid = %d status %#x, %d SIGCHLD", r, st, (int)chld_count);
    kill(c, SIGCONT);
    r = wait_for(c, &st, WCONTINUED);
    msleep(30);
    CHECK("nocldstop_cont", r == c && WIFCONTINUED(st) && chld_count == 0, "waitpid = %d status %#x, %d SIGCHLD", r, st, (int)chld_count);
    chld_count = 0;
    reap(c);
    msleep(20);
    CHECK("nocldstop_exit_still_signals", chld_count >= 1, "no SIGCHLD for the exit");
    signal(SIGCHLD, SIG_DFL);
    close(pfd[0]);
    close(pfd[1]);
}

static void test_waitid(void) {
    int pfd[2];
    pipe2(pfd, O_NONBLOCK);
    pid_t c = ticker(pfd[1], 0);
    msleep(30);
    kill(c, SIGSTOP);
    siginfo_t si;
    int ok = 0;
    for (int i = 0; i < 500 && !ok; i++) {
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, c, &si, WSTOPPED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c)
            ok = 1;
        else
            msleep(10);
    }
    CHECK("waitid_nowait", ok && si.si_code == CLD_STOPPED && si.si_status == SIGSTOP, "si_pid %d si_code %d si_status %d", si.si_pid, si.si_code, si.si_status);
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, c, &si, WSTOPPED | WNOHANG);
    CHECK("waitid_stopped", r == 0 && si.si_pid == c && si.si_code == CLD_STOPPED && si.si_status == SIGSTOP && si.si_signo == SIGCHLD,
          "r %d si_pid %d si_code %d si_status %d", r, si.si_pid, si.si_code, si.si_status);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, c, &si, WSTOPPED | WNOHANG);
    CHECK("waitid_stopped_once", r == 0 && si.si_pid == 0, "r %d si_pid %d", r, si.si_pid);
    kill(c, SIGCONT);
    ok = 0;
    for (int i = 0; i < 500 && !ok; i++) {
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, c, &si, WCONTINUED | WNOHANG) == 0 && si.si_pid == c)
            ok = 1;
        else
            msleep(10);
    }
    CHECK("waitid_continued", ok && si.si_code == CLD_CONTINUED && si.si_status == SIGCONT, "si_code %d si_status %d", si.si_code, si.si_status);
    errno = 0;
    r = waitid(P_PID, c, &si, WNOHANG);
    CHECK("waitid_no_options_einval", r < 0 && errno == EINVAL, "r %d errno %d", r, errno);
    reap(c);
    close(pfd[0]);
    close(pfd[1]);
}

/* The child blocks `blocked` and USR1, the parent sends `first`, then `second`, then USR1;
 * the child reports its pending set. */
static sigset_t child_pending(int first, int second) {
    int pfd[2];
    sigset_t out;
    sigemptyset(&out);
    pipe(pfd);
    sigset_t bl;
    sigemptyset(&bl);
    sigaddset(&bl, SIGUSR1);
    sigaddset(&bl, SIGTSTP);
    sigaddset(&bl, SIGCONT);
    sigprocmask(SIG_BLOCK, &bl, NULL);
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        sigset_t w;
        sigemptyset(&w);
        sigaddset(&w, SIGUSR1);
        int s;
        sigwait(&w, &s);
        sigset_t p;
        sigpending(&p);
        write(pfd[1], &p, sizeof p);
        _exit(0);
    }
    sigprocmask(SIG_UNBLOCK, &bl, NULL);
    setpgid(c, c);
    msleep(30);
    kill(c, first);
    kill(c, second);
    kill(c, SIGUSR1);
    read(pfd[0], &out, sizeof out);
    int st;
    waitpid(c, &st, 0);
    close(pfd[0]);
    close(pfd[1]);
    return out;
}

static void test_discard(void) {
    sigset_t p = child_pending(SIGTSTP, SIGCONT);
    CHECK("cont_discards_pending_stop", !sigismember(&p, SIGTSTP) && sigismember(&p, SIGCONT), "TSTP pending %d, CONT pending %d", sigismember(&p, SIGTSTP), sigismember(&p, SIGCONT));
    p = child_pending(SIGCONT, SIGTSTP);
    CHECK("stop_discards_pending_cont", sigismember(&p, SIGTSTP) && !sigismember(&p, SIGCONT), "TSTP pending %d, CONT pending %d", sigismember(&p, SIGTSTP), sigismember(&p, SIGCONT));
}

static void on_cont(int s) {
    (void)s;
    write(3, "C", 1);
}

static void test_cont_handler(void) {
    int pfd[2];
    pipe(pfd);
    pid_t c = fork();
    if (c == 0) {
        dup2(pfd[1], 3);
        signal(SIGCONT, on_cont);
        for (;;)
            pause();
    }
    msleep(30);
    kill(c, SIGSTOP);
    int st;
    wait_for(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    char b = 0;
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 300 && read(pfd[0], &b, 1) != 1; i++)
        msleep(10);
    CHECK("cont_handler_runs", b == 'C', "the SIGCONT handler did not run after the continue");
    reap(c);
    close(pfd[0]);
    close(pfd[1]);
}

/* A read blocked in the child survives a stop/continue (restarted, no EINTR). */
static void test_restart(void) {
    int pfd[2];
    pipe(pfd);
    pid_t c = fork();
    if (c == 0) {
        char b;
        ssize_t n = read(pfd[0], &b, 1);
        if (n < 0)
            _exit(errno == EINTR ? 50 : 51);
        _exit(b == 'x' ? 0 : 52);
    }
    msleep(50);
    kill(c, SIGSTOP);
    int st;
    wait_for(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    msleep(50);
    write(pfd[1], "x", 1);
    pid_t r = wait_for(c, &st, 0);
    CHECK("blocked_read_restarts", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x (50: EINTR)", st);
    close(pfd[0]);
    close(pfd[1]);
}

static int thread_fd;
static void *thread_tick(void *a) {
    (void)a;
    for (;;) {
        write(thread_fd, "u", 1);
        /* busy part: stays in user mode a while */
        for (volatile int i = 0; i < 100000; i++) {
        }
        msleep(5);
    }
    return NULL;
}

static void test_threads(void) {
    int pfd[2];
    pipe2(pfd, O_NONBLOCK);
    pid_t c = fork();
    if (c == 0) {
        thread_fd = pfd[1];
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            pthread_create(&t[i], NULL, thread_tick, NULL);
        for (;;) {
            write(pfd[1], "m", 1);
            msleep(5);
        }
    }
    msleep(100);
    kill(c, SIGSTOP);
    int st;
    pid_t r = wait_for(c, &st, WUNTRACED);
    msleep(50);
    drain(pfd[0]);
    msleep(200);
    int n = drain(pfd[0]);
    CHECK("threads_all_stop", r == c && n == 0, "waitpid %d; %d bytes written by a stopped multi-threaded process", r, n);
    kill(c, SIGCONT);
    msleep(100);
    char buf[4096];
    ssize_t got = read(pfd[0], buf, sizeof buf);
    int m = 0, u = 0;
    for (ssize_t i = 0; i < got; i++) {
        m += buf[i] == 'm';
        u += buf[i] == 'u';
    }
    CHECK("threads_all_continue", m > 0 && u > 0, "after SIGCONT: %d bytes from the main thread, %d from the others", m, u);
    reap(c);
    close(pfd[0]);
    close(pfd[1]);
}

static void on_hup(int s) {
    (void)s;
    write(4, "H", 1);
    _exit(0);
}

static void test_orphans(void) {
    int st;
    /* A session leader's own group is orphaned (its parent is in another session): SIGTSTP
     * is discarded, SIGSTOP still stops. */
    pid_t c = fork();
    if (c == 0) {
        setsid();
        raise(SIGTSTP);
        _exit(11);
    }
    pid_t r = wait_for(c, &st, WUNTRACED);
    CHECK("orphaned_tstp_discarded", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 11, "waitpid %d status %#x", r, st);
    c = fork();
    if (c == 0) {
        setsid();
        raise(SIGSTOP);
        _exit(12);
    }
    r = wait_for(c, &st, WUNTRACED);
    CHECK("orphaned_sigstop_stops", r == c && WIFSTOPPED(st), "waitpid %d status %#x", r, st);
    reap(c);
    /* A group that becomes orphaned while it has a stopped member gets SIGHUP + SIGCONT. */
    int pfd[2];
    pipe(pfd);
    c = fork();
    if (c == 0) {
        setsid();
        pid_t g = fork();
        if (g == 0) {
            dup2(pfd[1], 4);
            signal(SIGHUP, on_hup);
            setpgid(0, 0);
            raise(SIGTSTP); /* not orphaned yet: the parent is in another group of the session */
            write(4, "N", 1);
            _exit(0);
        }
        setpgid(g, g);
        int s2;
        pid_t r2 = wait_for(g, &s2, WUNTRACED);
        _exit(r2 == g && WIFSTOPPED(s2) ? 0 : 1); /* orphans the grandchild's group */
    }
    r = wait_for(c, &st, 0);
    CHECK("orphan_setup", r == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the grandchild did not stop (status %#x)", st);
    char b = 0;
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 300 && read(pfd[0], &b, 1) != 1; i++)
        msleep(10);
    CHECK("orphaned_stopped_group_gets_hup", b == 'H', "grandchild wrote %#x (H: SIGHUP handler ran)", b);
    close(pfd[0]);
    close(pfd[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Our own process group, so that our children's groups have a parent in another group of
     * the session (not orphaned) — unless we are pid 1 or a session leader. */
    if (getpid() != getsid(0))
        setpgid(0, 0);
    test_stop_cont();
    test_tstp_ttin_ttou();
    test_nocldstop();
    test_waitid();
    test_discard();
    test_cont_handler();
    test_restart();
    test_threads();
    test_orphans();
    printf("jobctl: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
