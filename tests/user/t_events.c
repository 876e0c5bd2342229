/* epoll (level/edge-triggered, one-shot, MOD/DEL, nesting, epoll_pwait), eventfd (counter,
 * EFD_SEMAPHORE, EFD_NONBLOCK, blocking wake-up from another process), timerfd (relative,
 * absolute, intervals, gettime, blocking read) and signalfd (dequeue, siginfo, poll). */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int s) { (void)s; got_usr1++; }

static int efd_for_thread;
static void *writer_thread(void *arg) {
    (void)arg;
    struct timespec d = {0, 100 * 1000000};
    nanosleep(&d, 0);
    uint64_t v = 5;
    if (write(efd_for_thread, &v, 8) != 8) return (void *)1;
    return 0;
}

static void test_eventfd(void) {
    uint64_t v;
    int e = eventfd(3, EFD_NONBLOCK);
    CHECK("eventfd.create", e >= 0);
    CHECK("eventfd.read_initial", read(e, &v, 8) == 8 && v == 3);
    CHECK_ERR("eventfd.read_empty_eagain", read(e, &v, 8), EAGAIN);
    v = 7;
    CHECK("eventfd.write", write(e, &v, 8) == 8);
    v = 8;
    CHECK("eventfd.write_adds", write(e, &v, 8) == 8 && read(e, &v, 8) == 8 && v == 15);
    CHECK_ERR("eventfd.short_read_einval", read(e, &v, 4), EINVAL);
    v = UINT64_MAX;
    CHECK_ERR("eventfd.write_max_einval", write(e, &v, 8), EINVAL);
    v = UINT64_MAX - 1;
    CHECK("eventfd.write_to_limit", write(e, &v, 8) == 8);
    v = 1;
    CHECK_ERR("eventfd.overflow_eagain", write(e, &v, 8), EAGAIN);
    struct pollfd pf = {e, POLLIN | POLLOUT, 0};
    CHECK("eventfd.poll_full", poll(&pf, 1, 0) == 1 && pf.revents == POLLIN);
    CHECK("eventfd.drain", read(e, &v, 8) == 8 && v == UINT64_MAX - 1);
    pf.revents = 0;
    CHECK("eventfd.poll_empty", poll(&pf, 1, 0) == 1 && pf.revents == POLLOUT);
    close(e);

    int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK("eventfd.sem_read1", read(s, &v, 8) == 8 && v == 1);
    CHECK("eventfd.sem_read2", read(s, &v, 8) == 8 && v == 1);
    CHECK_ERR("eventfd.sem_empty", read(s, &v, 8), EAGAIN);
    close(s);

    int c = eventfd(0, EFD_CLOEXEC);
    CHECK("eventfd.cloexec", fcntl(c, F_GETFD) == FD_CLOEXEC);
    CHECK("eventfd.blocking_flags", (fcntl(c, F_GETFL) & O_NONBLOCK) == 0);
    efd_for_thread = c;
    pthread_t th;
    long t0 = now_ms();
    pthread_create(&th, 0, writer_thread, 0);
    int ok = read(c, &v, 8) == 8 && v == 5;
    long dt = now_ms() - t0;
    pthread_join(th, 0);
    CHECKF("eventfd.blocking_read_woken", ok && dt >= 50, "ok=%d dt=%ld", ok, dt);
    CHECK_ERR("eventfd.bad_flags", eventfd(0, 0x1234), EINVAL);
    char link[64] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", c);
    CHECKF("eventfd.proc_link", readlink(path, link, sizeof link - 1) > 0 && strcmp(link, "anon_inode:[eventfd]") == 0, "%s", link);
    close(c);
}

static void test_epoll(void) {
    struct epoll_event ev, out[8];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK("epoll.create1", ep >= 0 && fcntl(ep, F_GETFD) == FD_CLOEXEC);
    CHECK_ERR("epoll.create1_bad_flags", epoll_create1(1), EINVAL);
#ifdef SYS_epoll_create /* x86_64 only: asm-generic (arm64) has just epoll_create1 */
    CHECK_ERR("epoll.create_zero", syscall(SYS_epoll_create, 0), EINVAL);
#endif
    int p[2];
    pipe(p);
    ev.events = EPOLLIN;
    ev.data.u64 = 0x1122334455667788ull;
    CHECK("epoll.ctl_add", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    CHECK_ERR("epoll.ctl_add_exists", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
    CHECK_ERR("epoll.ctl_self", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    CHECK_ERR("epoll.ctl_badfd", epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev), EBADF);
    CHECK_ERR("epoll.ctl_not_epoll", epoll_ctl(p[1], EPOLL_CTL_ADD, p[0], &ev), EINVAL);
    CHECK_ERR("epoll.ctl_mod_missing", epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev), ENOENT);
    CHECK_ERR("epoll.wait_maxevents", epoll_wait(ep, out, 0, 0), EINVAL);
    CHECK("epoll.wait_nothing", epoll_wait(ep, out, 8, 0) == 0);
    long t0 = now_ms();
    int n = epoll_wait(ep, out, 8, 100);
    long dt = now_ms() - t0;
    CHECKF("epoll.wait_timeout", n == 0 && dt >= 90, "n=%d dt=%ld", n, dt);
    write(p[1], "ab", 2);
    n = epoll_wait(ep, out, 8, 1000);
    CHECKF("epoll.level_ready", n == 1 && out[0].events == EPOLLIN && out[0].data.u64 == 0x1122334455667788ull, "n=%d ev=%x", n, n > 0 ? out[0].events : 0);
    CHECK("epoll.level_again", epoll_wait(ep, out, 8, 0) == 1);
    struct pollfd pf = {ep, POLLIN, 0};
    CHECK("epoll.fd_pollable", poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN));
    char b[4];
    read(p[0], b, 2);
    CHECK("epoll.level_drained", epoll_wait(ep, out, 8, 0) == 0);
    pf.revents = 0;
    CHECK("epoll.fd_not_ready", poll(&pf, 1, 0) == 0);

    /* Edge-triggered. */
    ev.events = EPOLLIN | EPOLLET;
    ev.data.fd = p[0];
    CHECK("epoll.ctl_mod_et", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0);
    write(p[1], "x", 1);
    CHECK("epoll.et_first", epoll_wait(ep, out, 8, 1000) == 1 && out[0].data.fd == p[0]);
    CHECK("epoll.et_not_again", epoll_wait(ep, out, 8, 0) == 0);
    write(p[1], "y", 1);
    CHECK("epoll.et_new_edge", epoll_wait(ep, out, 8, 1000) == 1);
    read(p[0], b, 2);

    /* One-shot. */
    ev.events = EPOLLIN | EPOLLONESHOT;
    CHECK("epoll.ctl_mod_oneshot", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0);
    write(p[1], "z", 1);
    CHECK("epoll.oneshot_first", epoll_wait(ep, out, 8, 1000) == 1);
    CHECK("epoll.oneshot_disabled", epoll_wait(ep, out, 8, 0) == 0);
    CHECK("epoll.oneshot_rearm", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0 && epoll_wait(ep, out, 8, 0) == 1);
    read(p[0], b, 1);

    /* Blocking wait woken by another process. */
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    pid_t c = fork();
    if (c == 0) {
        struct timespec d = {0, 150 * 1000000};
        nanosleep(&d, 0);
        write(p[1], "w", 1);
        _exit(0);
    }
    t0 = now_ms();
    n = epoll_wait(ep, out, 8, 5000);
    dt = now_ms() - t0;
    CHECKF("epoll.wait_woken", n == 1 && dt >= 100 && dt < 4000, "n=%d dt=%ld", n, dt);
    waitpid(c, 0, 0);
    read(p[0], b, 1);

    /* Writable end, HUP on the read end after the writer closes. */
    int e2 = epoll_create1(0);
    ev.events = EPOLLOUT;
    ev.data.u32 = 42;
    epoll_ctl(e2, EPOLL_CTL_ADD, p[1], &ev);
    CHECK("epoll.out_ready", epoll_wait(e2, out, 8, 0) == 1 && out[0].events == EPOLLOUT && out[0].data.u32 == 42);
    CHECK("epoll.ctl_del", epoll_ctl(e2, EPOLL_CTL_DEL, p[1], 0) == 0 && epoll_wait(e2, out, 8, 0) == 0);
    CHECK_ERR("epoll.ctl_del_again", epoll_ctl(e2, EPOLL_CTL_DEL, p[1], 0), ENOENT);

    /* Nested: e2 watches ep; a write to the pipe makes e2 readable and wakes it. */
    ev.events = EPOLLIN;
    ev.data.u32 = 7;
    CHECK("epoll.nested_add", epoll_ctl(e2, EPOLL_CTL_ADD, ep, &ev) == 0);
    CHECK("epoll.nested_idle", epoll_wait(e2, out, 8, 0) == 0);
    c = fork();
    if (c == 0) {
        struct timespec d = {0, 100 * 1000000};
        nanosleep(&d, 0);
        write(p[1], "n", 1);
        _exit(0);
    }
    n = epoll_wait(e2, out, 8, 5000);
    CHECKF("epoll.nested_woken", n == 1 && out[0].data.u32 == 7, "n=%d", n);
    waitpid(c, 0, 0);
    read(p[0], b, 1);

    close(p[1]);
    n = epoll_wait(ep, out, 8, 1000);
    CHECKF("epoll.hup", n == 1 && (out[0].events & EPOLLHUP), "n=%d ev=%x", n, n > 0 ? out[0].events : 0);
    close(p[0]);
    CHECK("epoll.closed_fd_dropped", epoll_wait(ep, out, 8, 0) == 0);

    /* eventfd in epoll, and epoll_pwait interrupted by an unblocked signal. */
    int e = eventfd(0, EFD_NONBLOCK);
    ev.events = EPOLLIN;
    ev.data.u32 = 9;
    epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev);
    uint64_t one = 1;
    write(e, &one, 8);
    CHECK("epoll.eventfd_ready", epoll_wait(ep, out, 8, 0) == 1 && out[0].data.u32 == 9);
    read(e, &one, 8);
    sigset_t all;
    sigemptyset(&all);
    c = fork();
    if (c == 0) {
        struct timespec d = {0, 100 * 1000000};
        nanosleep(&d, 0);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    errno = 0;
    n = epoll_pwait(ep, out, 8, 5000, &all);
    CHECKF("epoll.pwait_eintr", n == -1 && errno == EINTR && got_usr1 == 1, "n=%d errno=%d got=%d", n, errno, (int)got_usr1);
    waitpid(c, 0, 0);
    signal(SIGUSR1, SIG_DFL);
    close(e);
    close(e2);
    close(ep);
}

static void test_timerfd(void) {
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    CHECK("timerfd.create", t >= 0 && fcntl(t, F_GETFD) == FD_CLOEXEC);
    CHECK_ERR("timerfd.bad_clock", timerfd_create(12345, 0), EINVAL);
    uint64_t v;
    CHECK_ERR("timerfd.unarmed_eagain", read(t, &v, 8), EAGAIN);
    struct itimerspec its = {{0, 0}, {0, 50 * 1000000}}, old;
    /* Timed from before arming: the timer may not fire sooner than 50 ms after that, however
       long this process is descheduled between the calls (ms truncation allows 49). */
    long t0 = now_ms();
    CHECK("timerfd.settime", timerfd_settime(t, 0, &its, 0) == 0);
    struct itimerspec cur;
    CHECK("timerfd.gettime", timerfd_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 50 * 1000000);
    struct pollfd pf = {t, POLLIN, 0};
    int n = poll(&pf, 1, 2000);
    long dt = now_ms() - t0;
    CHECKF("timerfd.poll_fires", n == 1 && dt >= 49, "n=%d dt=%ld", n, dt);
    CHECK("timerfd.read_one", read(t, &v, 8) == 8 && v == 1);
    CHECK_ERR("timerfd.read_again_eagain", read(t, &v, 8), EAGAIN);
    CHECK("timerfd.disarmed_after", timerfd_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);

    /* Interval: 20 ms period, wait ~110 ms, expect several expirations. */
    its.it_value.tv_nsec = 20 * 1000000;
    its.it_interval.tv_nsec = 20 * 1000000;
    timerfd_settime(t, 0, &its, 0);
    struct timespec d = {0, 110 * 1000000};
    nanosleep(&d, 0);
    CHECKF("timerfd.interval_count", read(t, &v, 8) == 8 && v >= 4 && v <= 7, "v=%llu", (unsigned long long)v);
    CHECK("timerfd.gettime_interval", timerfd_gettime(t, &cur) == 0 && cur.it_interval.tv_nsec == 20 * 1000000);
    struct itimerspec off = {{0, 0}, {0, 0}};
    CHECK("timerfd.old_value", timerfd_settime(t, 0, &off, &old) == 0 && old.it_interval.tv_nsec == 20 * 1000000);
    CHECK_ERR("timerfd.disarmed_eagain", read(t, &v, 8), EAGAIN);
    CHECK_ERR("timerfd.bad_nsec", timerfd_settime(t, 0, &(struct itimerspec){{0, 0}, {0, 1000000000}}, 0), EINVAL);
    CHECK_ERR("timerfd.not_timerfd", timerfd_settime(0, 0, &off, 0), EINVAL);
    CHECK_ERR("timerfd.short_read", read(t, &v, 4), EINVAL);
    close(t);

    /* Absolute, realtime clock, blocking read. */
    int r = timerfd_create(CLOCK_REALTIME, 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec abs_ = {{0, 0}, now};
    abs_.it_value.tv_nsec += 80 * 1000000;
    if (abs_.it_value.tv_nsec >= 1000000000) {
        abs_.it_value.tv_sec++;
        abs_.it_value.tv_nsec -= 1000000000;
    }
    CHECK("timerfd.abs_settime", timerfd_settime(r, TFD_TIMER_ABSTIME, &abs_, 0) == 0);
    t0 = now_ms();
    n = read(r, &v, 8);
    dt = now_ms() - t0;
    CHECKF("timerfd.abs_blocking_read", n == 8 && v == 1 && dt >= 50 && dt < 2000, "n=%d v=%llu dt=%ld", n, (unsigned long long)v, dt);
    abs_.it_value.tv_sec -= 10;
    timerfd_settime(r, TFD_TIMER_ABSTIME, &abs_, 0);
    CHECK("timerfd.abs_past_fires", read(r, &v, 8) == 8 && v == 1);
    close(r);

    /* timerfd in epoll wakes a blocked epoll_wait. */
    int m = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {.u32 = 3}}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, m, &ev);
    its = (struct itimerspec){{0, 0}, {0, 60 * 1000000}};
    timerfd_settime(m, 0, &its, 0);
    t0 = now_ms();
    n = epoll_wait(ep, out, 2, 3000);
    dt = now_ms() - t0;
    CHECKF("timerfd.epoll_woken", n == 1 && out[0].data.u32 == 3 && dt >= 40 && dt < 2500, "n=%d dt=%ld", n, dt);
    close(ep);
    close(m);
}

static void test_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, 0);
    int s = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    CHECK("signalfd.create", s >= 0 && fcntl(s, F_GETFD) == FD_CLOEXEC);
    struct signalfd_siginfo si[2];
    CHECK_ERR("signalfd.empty_eagain", read(s, si, sizeof si[0]), EAGAIN);
    CHECK_ERR("signalfd.short_read", read(s, si, 64), EINVAL);
    CHECK("signalfd.siginfo_size", sizeof(struct signalfd_siginfo) == 128);
    struct pollfd pf = {s, POLLIN, 0};
    CHECK("signalfd.poll_idle", poll(&pf, 1, 0) == 0);
    kill(getpid(), SIGUSR2);
    pf.revents = 0;
    CHECK("signalfd.poll_pending", poll(&pf, 1, 0) == 1 && pf.revents == POLLIN);
    CHECK("signalfd.read", read(s, si, sizeof si[0]) == 128 && si[0].ssi_signo == SIGUSR2);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR2);
    int n = read(s, si, sizeof si);
    CHECKF("signalfd.read_two", n == 256 && si[0].ssi_signo == SIGUSR1 && si[1].ssi_signo == SIGUSR2, "n=%d", n);
    sigset_t pend;
    sigpending(&pend);
    CHECK("signalfd.dequeued", !sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2));

    /* Change the mask in place. */
    sigset_t only1;
    sigemptyset(&only1);
    sigaddset(&only1, SIGUSR1);
    CHECK("signalfd.update_mask", signalfd(s, &only1, 0) == s);
    kill(getpid(), SIGUSR2);
    CHECK_ERR("signalfd.masked_out", read(s, si, sizeof si[0]), EAGAIN);
    sigpending(&pend);
    CHECK("signalfd.other_still_pending", sigismember(&pend, SIGUSR2));
    CHECK_ERR("signalfd.not_signalfd", signalfd(0, &only1, 0), EINVAL);

    /* epoll_wait on a signalfd woken by a signal from a child. */
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {.u32 = 11}}, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    pid_t c = fork();
    if (c == 0) {
        struct timespec d = {0, 100 * 1000000};
        nanosleep(&d, 0);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    long t0 = now_ms();
    n = epoll_wait(ep, out, 2, 5000);
    long dt = now_ms() - t0;
    CHECKF("signalfd.epoll_woken", n == 1 && out[0].data.u32 == 11 && dt >= 50, "n=%d dt=%ld", n, dt);
    CHECK("signalfd.read_after_epoll", read(s, si, sizeof si[0]) == 128 && si[0].ssi_signo == SIGUSR1);
    waitpid(c, 0, 0);

    /* Blocking read. */
    int b = signalfd(-1, &only1, 0);
    c = fork();
    if (c == 0) {
        struct timespec d = {0, 100 * 1000000};
        nanosleep(&d, 0);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    n = read(b, si, sizeof si[0]);
    CHECKF("signalfd.blocking_read", n == 128 && si[0].ssi_signo == SIGUSR1, "n=%d", n);
    waitpid(c, 0, 0);
    close(b);
    close(ep);
    close(s);
    /* Discard the SIGUSR2 left pending before unblocking. */
    signal(SIGUSR2, SIG_IGN);
    sigprocmask(SIG_UNBLOCK, &set, 0);
    signal(SIGUSR2, SIG_DFL);
}

int main(void) {
    check_init("events");
    test_eventfd();
    test_epoll();
    test_timerfd();
    test_signalfd();
    return check_done();
}
