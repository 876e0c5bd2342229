/* Pipes and FIFOs: data, EOF, EPIPE/SIGPIPE, O_NONBLOCK, PIPE_BUF atomicity, capacity,
 * FIONREAD; poll/select/pselect6/ppoll readiness, timeouts and signal masks. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#define FIFO "/tmp/t_pipes.fifo"

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int s) { (void)s; got_usr1++; }

static int wait_exit(pid_t p) {
    int st;
    if (waitpid(p, &st, 0) != p) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

int main(void) {
    check_init("pipes");
    int p[2];
    char buf[70000];
    struct stat st;

    CHECK("pipe", pipe(p) == 0 && p[0] >= 0 && p[1] >= 0);
    CHECK("write_read", write(p[1], "abc", 3) == 3 && read(p[0], buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0);
    CHECK("fstat_fifo", fstat(p[0], &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK("access_modes", (fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY && (fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY);
    CHECK_ERR("write_read_end", write(p[0], "x", 1), EBADF);
    CHECK_ERR("read_write_end", read(p[1], buf, 1), EBADF);
    write(p[1], "hello", 5);
    int avail = -1;
    CHECK("fionread", ioctl(p[0], FIONREAD, &avail) == 0 && avail == 5);
    CHECK("partial_reads", read(p[0], buf, 2) == 2 && read(p[0], buf + 2, 10) == 3 && memcmp(buf, "hello", 5) == 0);
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    char r1[3], r2[1];
    struct iovec riov[2] = {{r1, 3}, {r2, 1}};
    CHECK("writev_readv", writev(p[1], iov, 2) == 4 && readv(p[0], riov, 2) == 4 && memcmp(r1, "abc", 3) == 0 && r2[0] == 'd');
    int dupw = dup(p[1]);
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    CHECK_ERR("dup_keeps_writer_open", read(p[0], buf, 1), EAGAIN);
    close(dupw);
    CHECK("eof_after_writers_close", read(p[0], buf, 1) == 0);
    close(p[0]);

    /* EPIPE and SIGPIPE */
    pipe(p);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    CHECK_ERR("epipe", write(p[1], "x", 1), EPIPE);
    signal(SIGPIPE, SIG_DFL);
    pid_t c = fork();
    if (c == 0) {
        write(p[1], "x", 1);
        _exit(0);
    }
    CHECK("sigpipe_kills", wait_exit(c) == 100 + SIGPIPE);
    close(p[1]);

    /* pipe2 flags, non-blocking behaviour */
    CHECK("pipe2_flags", pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0 && fcntl(p[0], F_GETFD) == FD_CLOEXEC && fcntl(p[1], F_GETFD) == FD_CLOEXEC && (fcntl(p[0], F_GETFL) & O_NONBLOCK) && (fcntl(p[1], F_GETFL) & O_NONBLOCK));
    CHECK_ERR("pipe2_bad_flags", pipe2(p + 0, 0x12345678 & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT)), EINVAL);
    CHECK_ERR("nonblock_read_empty", read(p[0], buf, 1), EAGAIN);
    long cap = 0;
    memset(buf, 'x', sizeof buf);
    for (;;) {
        ssize_t n = write(p[1], buf, 4096);
        if (n < 0) break;
        cap += n;
        if (cap > (1 << 24)) break;
    }
    CHECKF("capacity_at_least_4k", cap >= 4096 && cap <= (1 << 24), "capacity %ld", cap);
    CHECK_ERR("nonblock_write_full", write(p[1], buf, 1), EAGAIN);
    CHECK("fionread_full", ioctl(p[0], FIONREAD, &avail) == 0 && avail == cap);
    CHECK("read_frees_space", read(p[0], buf, 4096) == 4096 && write(p[1], buf, 100) == 100);
    close(p[0]);
    close(p[1]);

    /* PIPE_BUF atomicity: 4 writers, 64 writes of PIPE_BUF bytes each */
    pipe(p);
    enum { W = 4, N = 64, B = 4096 };
    for (int w = 0; w < W; w++) {
        if (fork() == 0) {
            close(p[0]);
            char blk[B];
            memset(blk, 'A' + w, B);
            for (int i = 0; i < N; i++)
                if (write(p[1], blk, B) != B) _exit(1);
            _exit(0);
        }
    }
    close(p[1]);
    static char all[W * N * B + 1];
    long got = 0;
    ssize_t n;
    while ((n = read(p[0], all + got, sizeof all - got)) > 0) got += n;
    int bad = 0;
    for (long b = 0; b + B <= got; b += B)
        for (int i = 1; i < B; i++)
            if (all[b + i] != all[b]) { bad++; break; }
    int ok = 1;
    for (int w = 0; w < W; w++) ok &= wait(0) > 0;
    CHECKF("pipe_buf_atomic", got == W * N * B && bad == 0 && ok, "got %ld of %d, %d mixed blocks", got, W * N * B, bad);
    close(p[0]);

    /* blocking reader woken by a writer in another process */
    pipe(p);
    c = fork();
    if (c == 0) {
        usleep(100000);
        write(p[1], "late", 4);
        _exit(0);
    }
    long t0 = now_ms();
    CHECK("blocking_read_wakes", read(p[0], buf, 10) == 4 && now_ms() - t0 >= 50);
    wait_exit(c);
    /* a big write completes in pieces while the reader drains */
    c = fork();
    if (c == 0) {
        close(p[0]);
        static char big[200000];
        memset(big, 'b', sizeof big);
        _exit(write(p[1], big, sizeof big) == (ssize_t)sizeof big ? 0 : 1);
    }
    close(p[1]);
    got = 0;
    while ((n = read(p[0], buf, sizeof buf)) > 0) got += n;
    CHECK("large_write_blocks_and_completes", got == 200000 && wait_exit(c) == 0);
    close(p[0]);

    /* FIFOs */
    unlink(FIFO);
    CHECK("mkfifo", mkfifo(FIFO, 0644) == 0 && stat(FIFO, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK_ERR("fifo_wronly_nonblock_no_reader", open(FIFO, O_WRONLY | O_NONBLOCK), ENXIO);
    int rfd = open(FIFO, O_RDONLY | O_NONBLOCK);
    CHECK("fifo_rdonly_nonblock", rfd >= 0);
    int wfd = open(FIFO, O_WRONLY | O_NONBLOCK);
    CHECK("fifo_wronly_with_reader", wfd >= 0);
    CHECK("fifo_data", write(wfd, "fifo", 4) == 4 && read(rfd, buf, 10) == 4 && memcmp(buf, "fifo", 4) == 0);
    close(wfd);
    CHECK("fifo_eof", read(rfd, buf, 10) == 0);
    close(rfd);
    c = fork();
    if (c == 0) {
        int fd = open(FIFO, O_WRONLY); /* blocks until the parent opens for reading */
        write(fd, "rendezvous", 10);
        _exit(fd >= 0 ? 0 : 1);
    }
    rfd = open(FIFO, O_RDONLY);
    n = read(rfd, buf, 20);
    CHECK("fifo_blocking_open_rendezvous", rfd >= 0 && n == 10 && memcmp(buf, "rendezvous", 10) == 0 && wait_exit(c) == 0);
    close(rfd);
    unlink(FIFO);

    /* poll */
    pipe(p);
    struct pollfd pf[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    CHECK("poll_write_ready", poll(pf, 2, 0) == 1 && pf[0].revents == 0 && pf[1].revents == POLLOUT);
    write(p[1], "x", 1);
    CHECK("poll_read_ready", poll(pf, 1, 0) == 1 && pf[0].revents == POLLIN);
    read(p[0], buf, 1);
    t0 = now_ms();
    CHECK("poll_timeout", poll(pf, 1, 100) == 0 && now_ms() - t0 >= 90);
    c = fork();
    if (c == 0) {
        usleep(100000);
        write(p[1], "y", 1);
        _exit(0);
    }
    t0 = now_ms();
    CHECK("poll_wakes_on_write", poll(pf, 1, 5000) == 1 && (pf[0].revents & POLLIN) && now_ms() - t0 < 4000);
    wait_exit(c);
    read(p[0], buf, 1);
    struct pollfd neg[2] = {{-1, POLLIN, 0}, {p[0], POLLIN, 0}};
    CHECK("poll_negative_fd_ignored", poll(neg, 2, 0) == 0 && neg[0].revents == 0);
    struct pollfd inv = {999, POLLIN, 0};
    CHECK("poll_pollnval", poll(&inv, 1, 0) == 1 && inv.revents == POLLNVAL);
    close(p[1]);
    CHECK("poll_pollhup", poll(pf, 1, 0) == 1 && (pf[0].revents & POLLHUP));
    close(p[0]);
    pipe(p);
    close(p[0]);
    pf[1].fd = p[1];
    CHECK("poll_pollerr_no_reader", poll(&pf[1], 1, 0) == 1 && (pf[1].revents & POLLERR));
    close(p[1]);
    int devnull = open("/dev/null", O_RDWR);
    struct pollfd pn = {devnull, POLLIN | POLLOUT, 0};
    CHECK("poll_regular_device_ready", poll(&pn, 1, 0) == 1 && (pn.revents & (POLLIN | POLLOUT)) == (POLLIN | POLLOUT));
    close(devnull);

    /* select and pselect6 */
    pipe(p);
    fd_set rs, ws;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_SET(p[0], &rs);
    FD_SET(p[1], &ws);
    struct timeval tv = {0, 0};
    CHECK("select_write_ready", select(p[1] + 1, &rs, &ws, 0, &tv) == 1 && !FD_ISSET(p[0], &rs) && FD_ISSET(p[1], &ws));
    write(p[1], "z", 1);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    tv.tv_sec = 0;
    tv.tv_usec = 0;
    CHECK("select_read_ready", select(p[0] + 1, &rs, 0, 0, &tv) == 1 && FD_ISSET(p[0], &rs));
    read(p[0], buf, 1);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    tv.tv_sec = 0;
    tv.tv_usec = 100000;
    t0 = now_ms();
    CHECK("select_timeout", select(p[0] + 1, &rs, 0, 0, &tv) == 0 && now_ms() - t0 >= 90 && !FD_ISSET(p[0], &rs));
    FD_ZERO(&rs);
    int closed_fd = dup(p[0]);
    close(closed_fd);
    FD_SET(closed_fd, &rs);
    tv.tv_usec = 0;
    CHECK_ERR("select_ebadf", select(closed_fd + 1, &rs, 0, 0, &tv), EBADF);
    t0 = now_ms();
    tv.tv_sec = 0;
    tv.tv_usec = 50000;
    CHECK("select_as_sleep", select(0, 0, 0, 0, &tv) == 0 && now_ms() - t0 >= 40);
    CHECK_ERR("select_negative_nfds", select(-1, 0, 0, 0, &tv), EINVAL);
    struct timespec ts = {0, 0};
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    write(p[1], "q", 1);
    CHECK("pselect_ready", pselect(p[0] + 1, &rs, 0, 0, &ts, 0) == 1 && FD_ISSET(p[0], &rs));
    read(p[0], buf, 1);

    /* signal masks: pselect6/ppoll atomically unblock SIGUSR1 */
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    sigset_t blk, old, empty;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR1);
    sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &blk, &old);
    raise(SIGUSR1);
    CHECK("signal_held_while_blocked", got_usr1 == 0);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    ts.tv_sec = 5;
    ts.tv_nsec = 0;
    t0 = now_ms();
    CHECK_ERR("pselect_sigmask_eintr", pselect(p[0] + 1, &rs, 0, 0, &ts, &empty), EINTR);
    sigset_t cur;
    sigprocmask(SIG_BLOCK, 0, &cur);
    CHECK("pselect_mask_restored", got_usr1 == 1 && sigismember(&cur, SIGUSR1) && now_ms() - t0 < 4000);
    raise(SIGUSR1);
    struct pollfd pp = {p[0], POLLIN, 0};
    ts.tv_sec = 5;
    CHECK_ERR("ppoll_sigmask_eintr", ppoll(&pp, 1, &ts, &empty), EINTR);
    sigprocmask(SIG_BLOCK, 0, &cur);
    CHECK("ppoll_mask_restored", got_usr1 == 2 && sigismember(&cur, SIGUSR1));
    /* the kernel's sigset_t is 8 bytes: any other size is EINVAL, for ppoll and pselect6 alike */
    ts.tv_sec = 0;
    ts.tv_nsec = 0;
    CHECK_ERR("ppoll_bad_sigsetsize", syscall(SYS_ppoll, &pp, 1, &ts, &empty, 4), EINVAL);
    struct { const sigset_t *ss; size_t len; } sm = {&empty, 4};
    CHECK_ERR("pselect6_bad_sigsetsize", syscall(SYS_pselect6, p[0] + 1, &rs, 0, 0, &ts, &sm), EINVAL);
    ts.tv_sec = 0;
    ts.tv_nsec = 50000000;
    t0 = now_ms();
    CHECK("ppoll_timeout", ppoll(&pp, 1, &ts, 0) == 0 && now_ms() - t0 >= 40);
    write(p[1], "r", 1);
    CHECK("ppoll_ready_null_timeout", ppoll(&pp, 1, 0, 0) == 1 && pp.revents == POLLIN);
    sigprocmask(SIG_SETMASK, &old, 0);
    /* poll interrupted by a handled signal from another process */
    read(p[0], buf, 1);
    c = fork();
    if (c == 0) {
        usleep(100000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    CHECK_ERR("poll_eintr", poll(&pp, 1, 5000), EINTR);
    wait_exit(c);
    close(p[0]);
    close(p[1]);
    return check_done();
}
