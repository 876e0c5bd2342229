/* AF_UNIX sockets: socketpair (stream, datagram, seqpacket), bind/listen/accept/connect on
 * file-system and abstract names, read/write/send/recv/sendto/recvfrom/sendmsg/recvmsg,
 * SCM_RIGHTS, shutdown, EOF, EPIPE/SIGPIPE, getsockname/getpeername, getsockopt
 * (SO_TYPE, SO_ERROR, SO_PEERCRED), non-blocking calls and poll/epoll readiness. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define PATH "/tmp/t_unix.sock"
#define DPATH "/tmp/t_unix.dgram"

static volatile sig_atomic_t got_pipe;
static void on_pipe(int s) { (void)s; got_pipe++; }

static socklen_t mkaddr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static void test_pair(void) {
    int sv[2];
    char b[64];
    CHECK("pair.stream", socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK("pair.write_read", write(sv[0], "hello", 5) == 5 && read(sv[1], b, sizeof b) == 5 && memcmp(b, "hello", 5) == 0);
    CHECK("pair.other_way", send(sv[1], "xy", 2, 0) == 2 && recv(sv[0], b, sizeof b, 0) == 2 && memcmp(b, "xy", 2) == 0);
    struct stat st;
    CHECK("pair.fstat_sock", fstat(sv[0], &st) == 0 && S_ISSOCK(st.st_mode));
    int ty = 0;
    socklen_t l = sizeof ty;
    CHECK("pair.so_type", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &ty, &l) == 0 && ty == SOCK_STREAM && l == sizeof ty);
    int err = -1;
    l = sizeof err;
    CHECK("pair.so_error", getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &err, &l) == 0 && err == 0);
    struct ucred cr;
    l = sizeof cr;
    CHECKF("pair.peercred", getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &l) == 0 && cr.pid == getpid() && cr.uid == geteuid() && cr.gid == getegid(), "pid=%d uid=%d", cr.pid, cr.uid);
    CHECK_ERR("pair.recv_nonblock_eagain", recv(sv[0], b, sizeof b, MSG_DONTWAIT), EAGAIN);
    struct pollfd pf = {sv[0], POLLIN | POLLOUT, 0};
    CHECK("pair.poll_writable", poll(&pf, 1, 0) == 1 && pf.revents == POLLOUT);
    write(sv[1], "z", 1);
    pf.revents = 0;
    CHECK("pair.poll_readable", poll(&pf, 1, 0) == 1 && pf.revents == (POLLIN | POLLOUT));
    read(sv[0], b, 1);

    /* Shutdown: write side gives EOF to the peer; EPIPE on write afterwards. */
    CHECK("pair.shutdown_wr", shutdown(sv[0], SHUT_WR) == 0);
    CHECK("pair.eof_after_shutdown", read(sv[1], b, sizeof b) == 0);
    pf.fd = sv[1];
    pf.events = POLLIN | POLLRDHUP;
    pf.revents = 0;
    CHECK("pair.poll_rdhup", poll(&pf, 1, 0) == 1 && (pf.revents & POLLRDHUP) && (pf.revents & POLLIN));
    CHECK_ERR("pair.send_after_shutdown", send(sv[0], "a", 1, MSG_NOSIGNAL), EPIPE);
    CHECK("pair.peer_still_writes", write(sv[1], "ok", 2) == 2 && read(sv[0], b, 2) == 2);
    CHECK_ERR("pair.shutdown_bad", shutdown(sv[0], 7), EINVAL);
    close(sv[0]);
    pf.events = POLLIN;
    pf.revents = 0;
    CHECK("pair.poll_hup", poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP));

    /* SIGPIPE / EPIPE on a closed peer. */
    signal(SIGPIPE, on_pipe);
    errno = 0;
    int r = write(sv[1], "x", 1);
    CHECKF("pair.epipe_sigpipe", r == -1 && errno == EPIPE && got_pipe == 1, "r=%d errno=%d got=%d", r, errno, (int)got_pipe);
    CHECK_ERR("pair.msg_nosignal", send(sv[1], "x", 1, MSG_NOSIGNAL), EPIPE);
    CHECK("pair.nosignal_no_sig", got_pipe == 1);
    signal(SIGPIPE, SIG_DFL);
    close(sv[1]);

    CHECK("pair.flags", socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0 && (fcntl(sv[0], F_GETFL) & O_NONBLOCK) && fcntl(sv[1], F_GETFD) == FD_CLOEXEC);
    CHECK_ERR("pair.nonblock_read", read(sv[0], b, 1), EAGAIN);
    close(sv[0]);
    close(sv[1]);
    CHECK_ERR("pair.bad_family", socketpair(12345, SOCK_STREAM, 0, sv), EAFNOSUPPORT);
    CHECK_ERR("socket.inet_unsupported_or_works", socket(AF_UNIX, SOCK_STREAM, 99), EPROTONOSUPPORT);

    /* Datagram pair keeps message boundaries. */
    CHECK("pair.dgram", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    send(sv[0], "one", 3, 0);
    send(sv[0], "three", 5, 0);
    CHECK("pair.dgram_boundary1", recv(sv[1], b, sizeof b, 0) == 3);
    CHECK("pair.dgram_truncate", recv(sv[1], b, 2, 0) == 2 && memcmp(b, "th", 2) == 0);
    CHECK_ERR("pair.dgram_empty", recv(sv[1], b, sizeof b, MSG_DONTWAIT), EAGAIN);
    send(sv[0], "peek", 4, 0);
    CHECK("pair.dgram_peek", recv(sv[1], b, sizeof b, MSG_PEEK) == 4 && recv(sv[1], b, sizeof b, 0) == 4);
    close(sv[0]);
    close(sv[1]);

    /* Seqpacket: boundaries and EOF. */
    CHECK("pair.seqpacket", socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
    write(sv[0], "ab", 2);
    write(sv[0], "cde", 3);
    CHECK("pair.seqpacket_msgs", read(sv[1], b, sizeof b) == 2 && read(sv[1], b, sizeof b) == 3);
    close(sv[0]);
    CHECK("pair.seqpacket_eof", read(sv[1], b, sizeof b) == 0);
    close(sv[1]);
}

static void test_listen(void) {
    struct sockaddr_un a, got;
    socklen_t al = mkaddr(&a, PATH), gl;
    char b[64];
    unlink(PATH);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("listen.socket", s >= 0);
    CHECK("listen.bind", bind(s, (struct sockaddr *)&a, al) == 0);
    struct stat st;
    CHECK("listen.node_is_socket", stat(PATH, &st) == 0 && S_ISSOCK(st.st_mode));
    int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_ERR("listen.bind_in_use", bind(s2, (struct sockaddr *)&a, al), EADDRINUSE);
    CHECK_ERR("listen.connect_not_listening", connect(s2, (struct sockaddr *)&a, al), ECONNREFUSED);
    CHECK("listen.listen", listen(s, 4) == 0);
    int acc = 0;
    socklen_t l = sizeof acc;
    CHECK("listen.so_acceptconn", getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0 && acc == 1);
    gl = sizeof got;
    CHECK("listen.getsockname", getsockname(s, (struct sockaddr *)&got, &gl) == 0 && strcmp(got.sun_path, PATH) == 0 && gl == al);
    /* fcntl O_NONBLOCK on the listener. */
    fcntl(s, F_SETFL, O_NONBLOCK);
    CHECK_ERR("listen.accept_eagain", accept(s, 0, 0), EAGAIN);
    fcntl(s, F_SETFL, 0);
    struct pollfd pf = {s, POLLIN, 0};
    CHECK("listen.poll_idle", poll(&pf, 1, 0) == 0);

    CHECK("listen.connect", connect(s2, (struct sockaddr *)&a, al) == 0);
    CHECK_ERR("listen.connect_again", connect(s2, (struct sockaddr *)&a, al), EISCONN);
    pf.revents = 0;
    CHECK("listen.poll_pending", poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN));
    gl = sizeof got;
    int c = accept4(s, (struct sockaddr *)&got, &gl, SOCK_CLOEXEC);
    CHECK("listen.accept", c >= 0 && fcntl(c, F_GETFD) == FD_CLOEXEC);
    CHECK("listen.accept_addr_unnamed", gl == sizeof(sa_family_t) && got.sun_family == AF_UNIX);
    gl = sizeof got;
    CHECK("listen.getpeername", getpeername(s2, (struct sockaddr *)&got, &gl) == 0 && strcmp(got.sun_path, PATH) == 0);
    gl = sizeof got;
    CHECK("listen.accepted_sockname", getsockname(c, (struct sockaddr *)&got, &gl) == 0 && strcmp(got.sun_path, PATH) == 0);
    CHECK_ERR("listen.getpeername_unconnected", getpeername(s, (struct sockaddr *)&got, &gl), ENOTCONN);
    CHECK("listen.data", write(s2, "ping", 4) == 4 && read(c, b, sizeof b) == 4 && write(c, "pong", 4) == 4 && read(s2, b, sizeof b) == 4 && memcmp(b, "pong", 4) == 0);
    struct ucred cr;
    l = sizeof cr;
    CHECK("listen.peercred", getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &l) == 0 && cr.pid == getpid());
    close(c);
    close(s2);

    /* Blocking accept woken by a child's connect; the child sends and exits. */
    pid_t ch = fork();
    if (ch == 0) {
        struct timespec d = {0, 100 * 1000000};
        nanosleep(&d, 0);
        int k = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(k, (struct sockaddr *)&a, al) != 0) _exit(1);
        write(k, "child", 5);
        _exit(0);
    }
    c = accept(s, 0, 0);
    int n = c >= 0 ? read(c, b, sizeof b) : -1;
    CHECKF("listen.blocking_accept", c >= 0 && n == 5 && memcmp(b, "child", 5) == 0, "c=%d n=%d", c, n);
    int st_;
    waitpid(ch, &st_, 0);
    CHECK("listen.child_eof", read(c, b, sizeof b) == 0);
    close(c);

    /* epoll on the listener and on a connection. */
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {.u32 = 1}}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    ch = fork();
    if (ch == 0) {
        struct timespec d = {0, 100 * 1000000};
        nanosleep(&d, 0);
        int k = socket(AF_UNIX, SOCK_STREAM, 0);
        connect(k, (struct sockaddr *)&a, al);
        nanosleep(&d, 0);
        write(k, "later", 5);
        nanosleep(&d, 0);
        _exit(0);
    }
    CHECK("listen.epoll_accept_ready", epoll_wait(ep, out, 4, 5000) == 1 && out[0].data.u32 == 1);
    c = accept(s, 0, 0);
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u32 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
    n = epoll_wait(ep, out, 4, 5000);
    CHECKF("listen.epoll_data_ready", n == 1 && out[0].data.u32 == 2 && out[0].events == EPOLLIN, "n=%d ev=%x", n, n > 0 ? out[0].events : 0);
    read(c, b, sizeof b);
    n = epoll_wait(ep, out, 4, 5000);
    CHECKF("listen.epoll_rdhup", n == 1 && (out[0].events & EPOLLRDHUP), "n=%d ev=%x", n, n > 0 ? out[0].events : 0);
    waitpid(ch, 0, 0);
    close(c);
    close(ep);

    close(s);
    int s3 = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_ERR("listen.connect_after_close", connect(s3, (struct sockaddr *)&a, al), ECONNREFUSED);
    CHECK("listen.unlink_node", unlink(PATH) == 0);
    CHECK_ERR("listen.connect_missing", connect(s3, (struct sockaddr *)&a, al), ENOENT);
    close(s3);
}

static void test_abstract(void) {
    struct sockaddr_un a = {AF_UNIX, {0}};
    memcpy(a.sun_path, "\0adros-test", 11);
    socklen_t al = offsetof(struct sockaddr_un, sun_path) + 11;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("abstract.bind", bind(s, (struct sockaddr *)&a, al) == 0 && listen(s, 1) == 0);
    int k = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK("abstract.connect", connect(k, (struct sockaddr *)&a, al) == 0);
    int c = accept(s, 0, 0);
    char b[8];
    CHECK("abstract.data", c >= 0 && write(k, "ab", 2) == 2 && read(c, b, 8) == 2);
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    CHECK("abstract.sockname", getsockname(s, (struct sockaddr *)&got, &gl) == 0 && gl == al && got.sun_path[0] == 0 && memcmp(got.sun_path + 1, "adros-test", 10) == 0);
    close(c);
    close(k);
    close(s);
}

static void test_dgram(void) {
    struct sockaddr_un a, from;
    socklen_t al = mkaddr(&a, DPATH), fl;
    char b[64];
    int n;
    unlink(DPATH);
    int r = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK("dgram.bind", bind(r, (struct sockaddr *)&a, al) == 0);
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK_ERR("dgram.send_unconnected", send(s, "x", 1, 0), ENOTCONN);
    CHECK("dgram.sendto", sendto(s, "hi", 2, 0, (struct sockaddr *)&a, al) == 2);
    fl = sizeof from;
    n = recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
    CHECKF("dgram.recvfrom_unnamed", n == 2 && fl == 0, "n=%d fl=%d", n, (int)fl);
    struct sockaddr_un sa;
    socklen_t sl = mkaddr(&sa, DPATH ".c");
    unlink(DPATH ".c");
    bind(s, (struct sockaddr *)&sa, sl);
    sendto(s, "abc", 3, 0, (struct sockaddr *)&a, al);
    fl = sizeof from;
    CHECK("dgram.recvfrom_named", recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &fl) == 3 && strcmp(from.sun_path, DPATH ".c") == 0);
    CHECK("dgram.connect", connect(s, (struct sockaddr *)&a, al) == 0 && send(s, "c", 1, 0) == 1 && recv(r, b, sizeof b, 0) == 1);
    CHECK_ERR("dgram.listen", listen(r, 1), EOPNOTSUPP);
    close(r);
    CHECK_ERR("dgram.peer_gone", send(s, "c", 1, 0), ECONNREFUSED);
    close(s);
    unlink(DPATH);
    unlink(DPATH ".c");
    CHECK_ERR("dgram.notsock", send(0 + 1 - 1 + open("/dev/null", O_RDONLY), "x", 1, 0), ENOTSOCK);
}

static void test_rights(void) {
    int sv[2], p[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    char data = 'D';
    struct iovec io = {&data, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {0};
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    CHECK("rights.sendmsg", sendmsg(sv[0], &m, 0) == 1);
    close(p[1]);
    char rd = 0;
    struct iovec rio = {&rd, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ru;
    struct msghdr rm = {0};
    rm.msg_iov = &rio;
    rm.msg_iovlen = 1;
    rm.msg_control = ru.buf;
    rm.msg_controllen = sizeof ru.buf;
    CHECK("rights.recvmsg", recvmsg(sv[1], &rm, MSG_CMSG_CLOEXEC) == 1 && rd == 'D');
    struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
    int fd = -1;
    if (rc && rc->cmsg_level == SOL_SOCKET && rc->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(rc), sizeof fd);
    CHECK("rights.got_fd", fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC);
    char b[4];
    CHECK("rights.fd_works", write(fd, "via", 3) == 3 && read(p[0], b, 3) == 3 && memcmp(b, "via", 3) == 0);
    close(fd);
    CHECK("rights.last_writer_closed", read(p[0], b, 3) == 0);
    /* Plain sendmsg/recvmsg with two iovecs, no control data. */
    char x1[] = "ab", x2[] = "cd";
    struct iovec two[2] = {{x1, 2}, {x2, 2}};
    struct msghdr m2 = {0};
    m2.msg_iov = two;
    m2.msg_iovlen = 2;
    CHECK("rights.sendmsg_iov", sendmsg(sv[0], &m2, 0) == 4);
    char y[8] = {0};
    struct iovec one = {y, 8};
    struct msghdr m3 = {0};
    m3.msg_iov = &one;
    m3.msg_iovlen = 1;
    CHECK("rights.recvmsg_iov", recvmsg(sv[1], &m3, 0) == 4 && memcmp(y, "abcd", 4) == 0 && m3.msg_controllen == 0);
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
}

/* sendfile into a non-blocking stream socket takes what fits: the count it returns is
 * exactly what the reader gets, and the file position (or *offset) advances by exactly
 * that, so a loop of sendfile calls delivers the file whole and in order. */
static void test_sendfile(void) {
    enum { SIZE = 1 << 20 };
    const char *path = "/tmp/t_unix.sendfile";
    unsigned char *data = malloc(SIZE), *got = malloc(SIZE);
    for (int i = 0; i < SIZE; i++) data[i] = (unsigned char)(i * 7 + i / 4096);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK("sendfile.setup", fd >= 0 && write(fd, data, SIZE) == SIZE && lseek(fd, 0, SEEK_SET) == 0);
    for (int mode = 0; mode < 2; mode++) {
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        off_t off = 0, total = 0;
        int received = 0, partial = 0, pos_ok = 1, calls = 0;
        lseek(fd, 0, SEEK_SET);
        while ((total < SIZE || received < SIZE) && calls < 100000) {
            calls++;
            if (total < SIZE) {
                ssize_t k = mode ? sendfile(sv[0], fd, &off, SIZE - total) : sendfile(sv[0], fd, NULL, SIZE - total);
                if (k > 0) {
                    if (k < SIZE - total) partial++;
                    total += k;
                    off_t where = mode ? off : lseek(fd, 0, SEEK_CUR);
                    if (where != total) pos_ok = 0;
                } else if (!(k < 0 && errno == EAGAIN)) {
                    break;
                }
            }
            ssize_t r = recv(sv[1], got + received, SIZE - received, MSG_DONTWAIT);
            if (r > 0) received += r;
        }
        const char *m = mode ? "sendfile.offset" : "sendfile.file_position";
        char name[64];
        snprintf(name, sizeof name, "%s_advances_by_what_was_sent", m);
        CHECKF(name, pos_ok && total == SIZE, "total=%lld", (long long)total);
        snprintf(name, sizeof name, "%s_partial_sends_happened", m);
        CHECKF(name, partial > 0, "partial=%d", partial);
        snprintf(name, sizeof name, "%s_reader_gets_the_file_whole", m);
        CHECKF(name, received == SIZE && memcmp(got, data, SIZE) == 0, "received=%d", received);
        if (mode == 1) CHECK("sendfile.offset_leaves_file_position", lseek(fd, 0, SEEK_CUR) == 0);
        close(sv[0]);
        close(sv[1]);
    }
    close(fd);
    unlink(path);
    free(data);
    free(got);
}

int main(void) {
    check_init("unix");
    test_pair();
    test_listen();
    test_abstract();
    test_dgram();
    test_rights();
    test_sendfile();
    return check_done();
}
