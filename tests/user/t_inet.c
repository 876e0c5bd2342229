/* AF_INET socket semantics against peers on the host (s12_net starts them; on Linux run
 * it against servers on 127.0.0.1): t_inet HOST TCP_PORT UDP_ECHO_PORT CLOSED_PORT.
 * `t_inet v6 HOST6 TCP_PORT UDP_ECHO_PORT CLOSED_PORT` runs the AF_INET6 checks (`v6.*`)
 * against the same kind of peers at an IPv6 address (on Linux: ::1; in the guest QEMU's
 * fec0::2, which slirp forwards to the host's ::1), then the IPv6 loopback checks; `t_inet
 * lo` runs the IPv6 loopback checks too.
 * `t_inet lo` runs only the loopback checks (no peers needed), which the full run ends
 * with too. A fifth argument `netbsd-lo` skips (and says so) the one loopback check whose
 * answer is Linux's own: any 127.0.0.0/8 address can be bound (NetBSD's lo0, on the rump
 * stack, has 127.0.0.1 alone).
 * TCP_PORT answers each connection with one line "hello <n>\n" and closes; UDP_ECHO_PORT
 * echoes every datagram; nothing listens on CLOSED_PORT. Every check first passed on
 * Linux 6.1. */
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static struct sockaddr_in peer(const char *host, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    return a;
}

static int wait_fd(int fd, short ev, int ms) {
    struct pollfd p = {.fd = fd, .events = ev};
    int r = poll(&p, 1, ms);
    return r == 1 ? p.revents : 0;
}

static void udp_checks(const char *host, int port) {
    struct sockaddr_in to = peer(host, port);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK("udp_socket", s >= 0);
    int sizes[] = {1, 100, 1400};
    int ok = 1;
    for (int i = 0; i < 3 && ok; i++) {
        char out[1400], in[2000];
        for (int j = 0; j < sizes[i]; j++)
            out[j] = (char)(j * 7 + i);
        if (sendto(s, out, sizes[i], 0, (struct sockaddr *)&to, sizeof to) != sizes[i]) {
            ok = 0;
            break;
        }
        if (!(wait_fd(s, POLLIN, 5000) & POLLIN)) {
            ok = 0;
            break;
        }
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(s, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
        ok = n == sizes[i] && !memcmp(in, out, n) && fl == sizeof from &&
             from.sin_port == to.sin_port && from.sin_addr.s_addr == to.sin_addr.s_addr;
    }
    CHECK("udp_echo_three_sizes_exact", ok);

    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    CHECK("udp_getsockname_bound_after_send",
          getsockname(s, (struct sockaddr *)&me, &ml) == 0 && me.sin_port != 0);

    /* Connected: send(), MSG_PEEK then the same bytes again, MSG_TRUNC. */
    CHECK("udp_connect", connect(s, (struct sockaddr *)&to, sizeof to) == 0);
    CHECK("udp_send_connected", send(s, "peekaboo", 8, 0) == 8);
    char b[16] = {0};
    int rev = wait_fd(s, POLLIN, 5000);
    CHECK("udp_poll_in", rev & POLLIN);
    CHECK("udp_msg_peek", recv(s, b, sizeof b, MSG_PEEK) == 8 && !memcmp(b, "peekaboo", 8));
    memset(b, 0, sizeof b);
    CHECK("udp_msg_trunc", recv(s, b, 4, MSG_TRUNC) == 8 && !memcmp(b, "peek", 4));
    CHECK_ERR("udp_dontwait_empty", recv(s, b, sizeof b, MSG_DONTWAIT), EAGAIN);

    /* epoll readiness. */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    CHECK("udp_epoll_idle", epoll_wait(ep, &ev, 1, 0) == 0);
    send(s, "x", 1, 0);
    CHECK("udp_epoll_in_on_echo", epoll_wait(ep, &ev, 1, 5000) == 1 && (ev.events & EPOLLIN));
    close(ep);
    CHECK_ERR("udp_too_big", send(s, b, 70000, 0), EMSGSIZE);
    close(s);
}

static void tcp_checks(const char *host, int port, int closed) {
    struct sockaddr_in to = peer(host, port);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK("tcp_socket_nonblock", s >= 0);
    CHECK_ERR("tcp_nonblocking_connect_in_progress",
              connect(s, (struct sockaddr *)&to, sizeof to), EINPROGRESS);
    int rev = wait_fd(s, POLLOUT, 10000);
    CHECK("tcp_connect_completes_pollout", rev & POLLOUT);
    int err = -1;
    socklen_t el = sizeof err;
    CHECK("tcp_so_error_zero", getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    CHECK("tcp_getpeername",
          getpeername(s, (struct sockaddr *)&a, &al) == 0 && a.sin_port == to.sin_port &&
              a.sin_addr.s_addr == to.sin_addr.s_addr);
    al = sizeof a;
    CHECK("tcp_getsockname",
          getsockname(s, (struct sockaddr *)&a, &al) == 0 && a.sin_port != 0 &&
              a.sin_addr.s_addr != 0);
    /* Linux: the first connect after a non-blocking connect completed reports success,
     * later ones EISCONN. */
    CHECK("tcp_connect_again_reports_success", connect(s, (struct sockaddr *)&to, sizeof to) == 0);
    CHECK_ERR("tcp_connect_third_isconn", connect(s, (struct sockaddr *)&to, sizeof to),
              EISCONN);
    int one = 1, v = 0;
    socklen_t vl = sizeof v;
    CHECK("tcp_nodelay",
          setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
              getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v == 1);
    /* The server's line: MSG_PEEK, then read, then EOF. */
    rev = wait_fd(s, POLLIN, 10000);
    CHECK("tcp_pollin_on_data", rev & POLLIN);
    char p[64] = {0}, r[64] = {0};
    usleep(200000);
    ssize_t np = recv(s, p, sizeof p, MSG_PEEK);
    ssize_t nr = recv(s, r, sizeof r, 0);
    CHECKF("tcp_msg_peek_then_recv", np > 6 && np == nr && !memcmp(p, r, nr) && !memcmp(r, "hello ", 6),
           "peek %zd recv %zd %.20s", np, nr, r);
    int eof = 0;
    for (int i = 0; i < 50 && !eof; i++) {
        wait_fd(s, POLLIN, 200);
        ssize_t n = recv(s, r, sizeof r, 0);
        if (n == 0)
            eof = 1;
    }
    CHECK("tcp_eof_after_peer_close", eof);
    rev = wait_fd(s, POLLIN | POLLRDHUP, 0);
    CHECK("tcp_poll_rdhup_at_eof", (rev & POLLIN) && (rev & POLLRDHUP));
    close(s);

    /* Blocking connect to a closed port. */
    s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in c = peer(host, closed);
    CHECK_ERR("tcp_connect_refused", connect(s, (struct sockaddr *)&c, sizeof c), ECONNREFUSED);
    close(s);

    /* Blocking connect, shutdown(SHUT_WR), then EPIPE (no SIGPIPE with MSG_NOSIGNAL). */
    s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("tcp_blocking_connect", connect(s, (struct sockaddr *)&to, sizeof to) == 0);
    CHECK("tcp_shutdown_wr", shutdown(s, SHUT_WR) == 0);
    CHECK_ERR("tcp_send_after_shutdown_epipe", send(s, "x", 1, MSG_NOSIGNAL), EPIPE);
    close(s);
}

static void bad_input_checks(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = peer("10.0.2.2", 80);
    CHECK_ERR("bad_addrlen", connect(s, (struct sockaddr *)&a, 4), EINVAL);
    CHECK_ERR("bad_pointer", connect(s, (struct sockaddr *)8, sizeof a), EFAULT);
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};
    CHECK_ERR("wrong_family", bind(s, (struct sockaddr *)&six, sizeof six), EAFNOSUPPORT);
    CHECK_ERR("recv_unconnected", recv(s, &a, 1, MSG_DONTWAIT), ENOTCONN);
    CHECK_ERR("getpeername_unconnected", getpeername(s, (struct sockaddr *)&a, &(socklen_t){16}), ENOTCONN);
    CHECK_ERR("dgram_tcp_unsupported", socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_ERR("udp_send_no_destination", send(u, "x", 1, 0), EDESTADDRREQ);
    CHECK_ERR("udp_listen", listen(u, 1), EOPNOTSUPP);
    close(u);
    CHECK_ERR("sockopt_bad_pointer", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (void *)8, 4), EFAULT);
    close(s);
}

static void listen_checks(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7777)};
    CHECK("listen_bind_any", bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK("listen", listen(l, 4) == 0);
    int l2 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_ERR("bind_in_use", bind(l2, (struct sockaddr *)&a, sizeof a), EADDRINUSE);
    close(l2);
    int acc = 0;
    socklen_t al = sizeof acc;
    CHECK("so_acceptconn", getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc == 1);
    fcntl(l, F_SETFL, O_NONBLOCK);
    CHECK_ERR("accept_nothing_pending", accept(l, 0, 0), EAGAIN);
    close(l);
}

static int listener(const char *ip, struct sockaddr_in *bound) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = peer(ip, 0);
    socklen_t n = sizeof *bound;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)bound, &n) < 0) {
        close(l);
        return -1;
    }
    return l;
}

/* The loopback: 127.0.0.0/8 and the host's own address reach this host's sockets and
 * nothing else (`lo`). */
static void loopback_checks(int netbsd_lo) {
    struct sockaddr_in at;
    int l = listener("127.0.0.1", &at);
    CHECK("lo.tcp_listen_127_0_0_1", l >= 0 && at.sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
                                          at.sin_port != 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("lo.tcp_connect", connect(c, (struct sockaddr *)&at, sizeof at) == 0);
    int s = accept(l, 0, 0);
    CHECK("lo.tcp_accept", s >= 0);
    struct sockaddr_in me, them;
    socklen_t n = sizeof me, m = sizeof them;
    CHECK("lo.tcp_source_is_127_0_0_1",
          getsockname(c, (struct sockaddr *)&me, &n) == 0 &&
              me.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK("lo.tcp_server_sees_the_client",
          getpeername(s, (struct sockaddr *)&them, &m) == 0 &&
              them.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && them.sin_port == me.sin_port);
    /* 64 KiB one way (fits the socket buffers, so one thread can write then read), a
     * reply the other way, then EOF. */
    static char out[65536], in[65536];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 31 + i / 977);
    size_t sent = 0, got = 0;
    while (sent < sizeof out) {
        ssize_t w = write(c, out + sent, sizeof out - sent);
        if (w <= 0)
            break;
        sent += w;
    }
    while (got < sent) {
        ssize_t r = read(s, in + got, sizeof in - got);
        if (r <= 0)
            break;
        got += r;
    }
    CHECK("lo.tcp_64k_arrive_whole", sent == sizeof out && got == sent &&
                                         memcmp(in, out, sizeof out) == 0);
    char b[8] = {0};
    CHECK("lo.tcp_reply", write(s, "pong", 4) == 4 && read(c, b, sizeof b) == 4 &&
                              memcmp(b, "pong", 4) == 0);
    close(c);
    CHECK("lo.tcp_eof_after_close", read(s, b, sizeof b) == 0);
    close(s);
    close(l);

    /* Nothing listening on a loopback port: refused at once. */
    l = listener("127.0.0.1", &at);
    close(l);
    c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_ERR("lo.tcp_closed_port_refused", connect(c, (struct sockaddr *)&at, sizeof at),
              ECONNREFUSED);
    close(c);

    /* 0.0.0.0 as a destination is this host (Linux). */
    l = listener("0.0.0.0", &at);
    struct sockaddr_in any = peer("0.0.0.0", ntohs(at.sin_port));
    c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("lo.tcp_connect_to_0_0_0_0", connect(c, (struct sockaddr *)&any, sizeof any) == 0);
    s = accept(l, 0, 0);
    CHECK("lo.tcp_accepted_from_0_0_0_0", s >= 0);
    close(s);
    close(c);

    /* The host's own address (what a datagram socket connected outwards gets as its
     * source): reached on this host too. Without a route out there is none to try. */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in out_there = peer("10.0.2.2", 9), own;
    socklen_t on = sizeof own;
    if (connect(u, (struct sockaddr *)&out_there, sizeof out_there) == 0 &&
        getsockname(u, (struct sockaddr *)&own, &on) == 0 &&
        own.sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
        own.sin_port = at.sin_port;
        c = socket(AF_INET, SOCK_STREAM, 0);
        CHECK("lo.tcp_connect_to_own_address",
              connect(c, (struct sockaddr *)&own, sizeof own) == 0);
        s = accept(l, 0, 0);
        socklen_t k = sizeof them;
        CHECK("lo.tcp_own_address_peer",
              s >= 0 && getpeername(s, (struct sockaddr *)&them, &k) == 0 &&
                  them.sin_addr.s_addr == own.sin_addr.s_addr);
        close(s);
        close(c);
    } else {
        printf("lo: no route out: the own-address checks do not apply here\n");
    }
    close(u);
    close(l);

    /* UDP over the loopback: the sender is seen as 127.0.0.1, and the answer comes back. */
    int a1 = socket(AF_INET, SOCK_DGRAM, 0), a2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in p1 = peer("127.0.0.1", 0), p2;
    n = sizeof p1;
    CHECK("lo.udp_bind", bind(a1, (struct sockaddr *)&p1, sizeof p1) == 0 &&
                             getsockname(a1, (struct sockaddr *)&p1, &n) == 0);
    CHECK("lo.udp_sendto", sendto(a2, "ping", 4, 0, (struct sockaddr *)&p1, sizeof p1) == 4);
    memset(b, 0, sizeof b);
    m = sizeof p2;
    CHECK("lo.udp_from_127_0_0_1",
          wait_fd(a1, POLLIN, 2000) & POLLIN &&
              recvfrom(a1, b, sizeof b, 0, (struct sockaddr *)&p2, &m) == 4 &&
              memcmp(b, "ping", 4) == 0 && p2.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    memset(b, 0, sizeof b);
    CHECK("lo.udp_answer",
          sendto(a1, "pong", 4, 0, (struct sockaddr *)&p2, sizeof p2) == 4 &&
              wait_fd(a2, POLLIN, 2000) & POLLIN && recv(a2, b, sizeof b, 0) == 4 &&
              memcmp(b, "pong", 4) == 0);
    close(a1);
    close(a2);

    /* Any 127.0.0.0/8 address can be bound (Linux). */
    if (netbsd_lo) {
        printf("SKIP: inet.lo.bind_127_0_0_2: NetBSD's lo0 has 127.0.0.1 only\n");
        return;
    }
    u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in two = peer("127.0.0.2", 0);
    CHECK("lo.bind_127_0_0_2", bind(u, (struct sockaddr *)&two, sizeof two) == 0);
    close(u);
}

static struct sockaddr_in6 peer6(const char *host, int port) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    inet_pton(AF_INET6, host, &a.sin6_addr);
    return a;
}

static int same6(const struct sockaddr_in6 *a, const char *host) {
    struct in6_addr h;
    inet_pton(AF_INET6, host, &h);
    return a->sin6_family == AF_INET6 && !memcmp(&a->sin6_addr, &h, sizeof h);
}

/* A TCP listener on [ip]:0 (v6only: IPV6_V6ONLY set first); its address in *bound. */
static int listener6(const char *ip, int v6only, struct sockaddr_in6 *bound) {
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = peer6(ip, 0);
    socklen_t n = sizeof *bound;
    if (l < 0 || setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0 ||
        bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)bound, &n) < 0) {
        close(l);
        return -1;
    }
    return l;
}

/* AF_INET6 over the loopback: ::1, dual-stack (v4-mapped) and IPV6_V6ONLY, bad input. */
static void v6_loopback_checks(void) {
    struct sockaddr_in6 at, me, them;
    int l = listener6("::1", 0, &at);
    CHECK("v6.tcp_listen_loopback", l >= 0 && same6(&at, "::1") && at.sin6_port != 0);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK("v6.tcp_connect_loopback", connect(c, (struct sockaddr *)&at, sizeof at) == 0);
    int s = accept(l, 0, 0);
    CHECK("v6.tcp_accept_loopback", s >= 0);
    socklen_t n = sizeof me, m = sizeof them;
    CHECK("v6.tcp_source_is_loopback",
          getsockname(c, (struct sockaddr *)&me, &n) == 0 && n == sizeof me && same6(&me, "::1"));
    CHECK("v6.tcp_server_sees_the_client",
          getpeername(s, (struct sockaddr *)&them, &m) == 0 && m == sizeof them &&
              same6(&them, "::1") && them.sin6_port == me.sin6_port);
    static char out[65536], in[65536];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 13 + i / 541);
    size_t sent = 0, got = 0;
    while (sent < sizeof out) {
        ssize_t w = write(c, out + sent, sizeof out - sent);
        if (w <= 0)
            break;
        sent += w;
    }
    while (got < sent) {
        ssize_t r = read(s, in + got, sizeof in - got);
        if (r <= 0)
            break;
        got += r;
    }
    CHECK("v6.tcp_64k_arrive_whole",
          sent == sizeof out && got == sent && memcmp(in, out, sizeof out) == 0);
    close(c);
    char b[8] = {0};
    CHECK("v6.tcp_eof_after_close", read(s, b, sizeof b) == 0);
    close(s);
    close(l);

    l = listener6("::1", 0, &at);
    close(l);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK_ERR("v6.tcp_closed_port_refused", connect(c, (struct sockaddr *)&at, sizeof at),
              ECONNREFUSED);
    close(c);

    /* Dual-stack (IPV6_V6ONLY 0, the default): an IPv4 client reaches a listener on ::,
     * and is seen as ::ffff:127.0.0.1; an AF_INET6 socket reaches it through a v4-mapped
     * address. */
    int v = -1;
    socklen_t vl = sizeof v;
    int t = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK("v6.v6only_default_off",
          getsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl) == 0 && v == 0 && vl == sizeof v);
    int dom = 0;
    socklen_t dl = sizeof dom;
    CHECK("v6.so_domain", getsockopt(t, SOL_SOCKET, SO_DOMAIN, &dom, &dl) == 0 && dom == AF_INET6);
    close(t);
    l = listener6("::", 0, &at);
    CHECK("v6.tcp_listen_any_dual", l >= 0 && same6(&at, "::"));
    struct sockaddr_in four = peer("127.0.0.1", ntohs(at.sin6_port));
    c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("v6.ipv4_client_reaches_dual_listener",
          connect(c, (struct sockaddr *)&four, sizeof four) == 0);
    m = sizeof them;
    s = accept(l, (struct sockaddr *)&them, &m);
    CHECK("v6.ipv4_client_seen_v4_mapped",
          s >= 0 && m == sizeof them && same6(&them, "::ffff:127.0.0.1"));
    close(s);
    close(c);
    struct sockaddr_in6 mapped = peer6("::ffff:127.0.0.1", ntohs(at.sin6_port));
    c = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK("v6.connect_v4_mapped", connect(c, (struct sockaddr *)&mapped, sizeof mapped) == 0);
    n = sizeof me;
    CHECK("v6.v4_mapped_getsockname",
          getsockname(c, (struct sockaddr *)&me, &n) == 0 && same6(&me, "::ffff:127.0.0.1"));
    s = accept(l, 0, 0);
    CHECK("v6.v4_mapped_accepted", s >= 0 && write(c, "m", 1) == 1 && read(s, b, 1) == 1 &&
                                       b[0] == 'm');
    close(s);
    close(c);
    close(l);

    /* IPV6_V6ONLY: set and read back; a v4-mapped address refused as Linux refuses it;
     * only before bind. */
    t = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    v = 0;
    vl = sizeof v;
    CHECK("v6.v6only_set",
          setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0 &&
              getsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl) == 0 && v == 1);
    struct sockaddr_in6 m0 = peer6("::ffff:127.0.0.1", 0);
    CHECK_ERR("v6.v6only_bind_v4_mapped_einval", bind(t, (struct sockaddr *)&m0, sizeof m0),
              EINVAL);
    CHECK_ERR("v6.v6only_connect_v4_mapped_enetunreach",
              connect(t, (struct sockaddr *)&mapped, sizeof mapped), ENETUNREACH);
    close(t);
    t = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 lo0 = peer6("::1", 0);
    CHECK_ERR("v6.v6only_after_bind_einval",
              bind(t, (struct sockaddr *)&lo0, sizeof lo0) == 0
                  ? setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)
                  : 0,
              EINVAL);
    close(t);

    /* UDP over ::1: the sender is ::1 and the answer comes back. */
    int a1 = socket(AF_INET6, SOCK_DGRAM, 0), a2 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 p1 = peer6("::1", 0), p2;
    n = sizeof p1;
    CHECK("v6.udp_bind_loopback", bind(a1, (struct sockaddr *)&p1, sizeof p1) == 0 &&
                                      getsockname(a1, (struct sockaddr *)&p1, &n) == 0);
    CHECK("v6.udp_sendto_loopback",
          sendto(a2, "ping", 4, 0, (struct sockaddr *)&p1, sizeof p1) == 4);
    memset(b, 0, sizeof b);
    m = sizeof p2;
    CHECK("v6.udp_from_loopback",
          wait_fd(a1, POLLIN, 2000) & POLLIN &&
              recvfrom(a1, b, sizeof b, 0, (struct sockaddr *)&p2, &m) == 4 &&
              m == sizeof p2 && memcmp(b, "ping", 4) == 0 && same6(&p2, "::1"));
    memset(b, 0, sizeof b);
    CHECK("v6.udp_answer",
          sendto(a1, "pong", 4, 0, (struct sockaddr *)&p2, sizeof p2) == 4 &&
              wait_fd(a2, POLLIN, 2000) & POLLIN && recv(a2, b, sizeof b, 0) == 4 &&
              memcmp(b, "pong", 4) == 0);
    close(a1);
    close(a2);

    /* Bad input. */
    t = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 x = peer6("::1", 9);
    CHECK_ERR("v6.bad_addrlen", connect(t, (struct sockaddr *)&x, 20), EINVAL);
    CHECK_ERR("v6.sockaddr_in_on_v6_socket_einval", bind(t, (struct sockaddr *)&four, sizeof four),
              EINVAL);
    struct sockaddr_in6 fam = x;
    fam.sin6_family = AF_INET;
    CHECK_ERR("v6.wrong_family", bind(t, (struct sockaddr *)&fam, sizeof fam), EAFNOSUPPORT);
    struct sockaddr_in6 far = peer6("2001:db8::1", 0);
    CHECK_ERR("v6.bind_not_ours", bind(t, (struct sockaddr *)&far, sizeof far), EADDRNOTAVAIL);
    CHECK_ERR("v6.bad_pointer", connect(t, (struct sockaddr *)8, sizeof x), EFAULT);
    close(t);
    CHECK_ERR("v6.dgram_tcp_unsupported", socket(AF_INET6, SOCK_DGRAM, IPPROTO_TCP),
              EPROTONOSUPPORT);
    int sv[2];
    CHECK_ERR("v6.socketpair_unsupported", socketpair(AF_INET6, SOCK_STREAM, 0, sv), EOPNOTSUPP);
}

/* AF_INET6 against the host's peers at HOST6. */
static void v6_net_checks(const char *host, int tcp, int udp, int closed) {
    struct sockaddr_in6 to = peer6(host, udp), from;
    int u = socket(AF_INET6, SOCK_DGRAM, 0);
    char out[1200], in[2000];
    for (int j = 0; j < (int)sizeof out; j++)
        out[j] = (char)(j * 3);
    socklen_t fl = sizeof from;
    CHECK("v6.udp_echo",
          sendto(u, out, sizeof out, 0, (struct sockaddr *)&to, sizeof to) == sizeof out &&
              wait_fd(u, POLLIN, 5000) & POLLIN &&
              recvfrom(u, in, sizeof in, 0, (struct sockaddr *)&from, &fl) == sizeof out &&
              !memcmp(in, out, sizeof out) && fl == sizeof from && same6(&from, host) &&
              from.sin6_port == to.sin6_port);
    close(u);

    to = peer6(host, tcp);
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK_ERR("v6.tcp_nonblocking_connect_in_progress",
              connect(s, (struct sockaddr *)&to, sizeof to), EINPROGRESS);
    CHECK("v6.tcp_connect_completes_pollout", wait_fd(s, POLLOUT, 10000) & POLLOUT);
    int err = -1;
    socklen_t el = sizeof err;
    CHECK("v6.tcp_so_error_zero",
          getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0);
    struct sockaddr_in6 a;
    socklen_t al = sizeof a;
    CHECK("v6.tcp_getpeername", getpeername(s, (struct sockaddr *)&a, &al) == 0 &&
                                    al == sizeof a && same6(&a, host) &&
                                    a.sin6_port == to.sin6_port);
    al = sizeof a;
    CHECK("v6.tcp_getsockname_routable",
          getsockname(s, (struct sockaddr *)&a, &al) == 0 && a.sin6_port != 0 &&
              !IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr) && !IN6_IS_ADDR_LINKLOCAL(&a.sin6_addr));
    char line[64] = {0};
    size_t n = 0;
    while (n < sizeof line - 1 && wait_fd(s, POLLIN, 10000) & POLLIN) {
        ssize_t r = read(s, line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += r;
    }
    CHECKF("v6.tcp_greeting_then_eof", !strncmp(line, "hello ", 6), "got %zu bytes: %s", n, line);
    close(s);

    struct sockaddr_in6 c = peer6(host, closed);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK_ERR("v6.tcp_connect_refused", connect(s, (struct sockaddr *)&c, sizeof c),
              ECONNREFUSED);
    close(s);
}

int main(int argc, char **argv) {
    check_init("inet");
    if (argc == 2 && !strcmp(argv[1], "lo")) {
        loopback_checks(0);
        v6_loopback_checks();
        return check_done();
    }
    if (argc == 6 && !strcmp(argv[1], "v6")) {
        signal(SIGPIPE, SIG_IGN);
        v6_net_checks(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
        v6_loopback_checks();
        return check_done();
    }
    if (argc < 5) {
        fprintf(stderr, "usage: t_inet HOST TCP_PORT UDP_ECHO_PORT CLOSED_PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    udp_checks(argv[1], atoi(argv[3]));
    tcp_checks(argv[1], atoi(argv[2]), atoi(argv[4]));
    bad_input_checks();
    listen_checks();
    loopback_checks(argc > 5 && !strcmp(argv[5], "netbsd-lo"));
    return check_done();
}
