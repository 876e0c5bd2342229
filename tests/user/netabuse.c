/* Socket calls with bad arguments (issue 17's hostile socket calls; the socket part of the
 * syscall-abuse tests, beside abuse.c), and a helper for the frame-injection test.
 *
 *   netabuse abuse HOST TCP_PORT UDP_ECHO_PORT
 *     Bad sockaddr lengths and families, NULL/wild/kernel user pointers, bad option levels,
 *     names, lengths and values, negative and huge lengths, bad flags, to socket, bind,
 *     connect, sendto/recvfrom, sendmsg/recvmsg, set/getsockopt, getsockname/getpeername,
 *     listen, accept4, shutdown and the interface ioctls. Each call must fail with the errno
 *     Linux 6.1 gives (0 in the table: any error). Then the very sockets that took the
 *     abuse must still work: the UDP one echoes a datagram through HOST:UDP_ECHO_PORT, the
 *     TCP one connects to HOST:TCP_PORT and reads its "hello" line. Prints one line per
 *     unexpected result and "PASS netabuse N calls" (exit 0) when all came out right.
 *     First run on Linux 6.1 against peers on 127.0.0.1 (s12_net's kind of peers). The
 *     same for AF_INET6 sockets (bad sockaddr_in6 lengths and families, v4-mapped
 *     addresses on a V6ONLY socket, IPv6 option levels), whose sockets then carry a TCP
 *     connection and a datagram over ::1 (first run on Linux 6.18).
 *
 *   netabuse wait PORT SECONDS
 *     Waits for a UDP datagram "ADROS-INJECT-DONE" on PORT, answers "ADROS-INJECT-ACK" to
 *     its sender, prints "inject-done" and exits 0 (exit 1 after SECONDS without one). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BAD ((long)0xdeadbeef000)
#define KERNEL ((long)0xffffffff80100000)

static int calls, wrong;

/* One raw system call that must fail with `want` (0: any errno). */
static void err(const char *what, int want, long nr, long a, long b, long c, long d, long e, long f) {
    errno = 0;
    long r = syscall(nr, a, b, c, d, e, f);
    calls++;
    if (r >= 0) {
        wrong++;
        printf("UNEXPECTED %s returned %ld (want errno %d)\n", what, r, want);
        if (nr == SYS_socket || nr == SYS_accept4)
            close((int)r);
    } else if (want && errno != want) {
        wrong++;
        printf("UNEXPECTED %s: errno %d (%s), want %d (%s)\n", what, errno, strerror(errno), want,
               strerror(want));
    }
}

/* A call that must succeed. */
static void ok(const char *what, long r) {
    calls++;
    if (r < 0) {
        wrong++;
        printf("UNEXPECTED %s failed: errno %d (%s)\n", what, errno, strerror(errno));
    }
}

static struct sockaddr_in addr(const char *host, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    return a;
}

static int readable(int fd, int ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static int wait_done(int port, int secs) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = addr("0.0.0.0", port);
    if (u < 0 || bind(u, (struct sockaddr *)&me, sizeof me) < 0) {
        printf("netabuse wait: socket/bind: %s\n", strerror(errno));
        return 1;
    }
    time_t end = time(0) + secs;
    while (time(0) < end) {
        if (!readable(u, 1000))
            continue;
        char b[64] = {0};
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(u, b, sizeof b - 1, 0, (struct sockaddr *)&from, &fl);
        if (n > 0 && strncmp(b, "ADROS-INJECT-DONE", 17) == 0) {
            for (int i = 0; i < 3; i++)
                sendto(u, "ADROS-INJECT-ACK", 16, 0, (struct sockaddr *)&from, fl);
            printf("inject-done\n");
            return 0;
        }
    }
    printf("WAIT-TIMEOUT: no ADROS-INJECT-DONE on port %d in %d s\n", port, secs);
    return 1;
}

static void abuse(int s, int u, int l) {
    char buf[256];
    struct sockaddr_in sin = addr("0.0.0.0", 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    struct sockaddr_in wrongfam = sin;
    wrongfam.sin_family = 9999;
    long ptrs[] = {0, BAD, KERNEL, 1};
    const char *pn[] = {"NULL", "wild", "kernel", "1"};
    int one = 1;
    socklen_t len;
    char name[96];

    /* socket(2) */
    err("socket(family 9999)", EAFNOSUPPORT, SYS_socket, 9999, SOCK_STREAM, 0, 0, 0, 0);
    err("socket(family -1)", EAFNOSUPPORT, SYS_socket, -1, SOCK_STREAM, 0, 0, 0, 0);
    err("socket(type 99)", EINVAL, SYS_socket, AF_INET, 99, 0, 0, 0, 0);
    err("socket(bad type flags)", EINVAL, SYS_socket, AF_INET, SOCK_STREAM | 0x40000000, 0, 0, 0, 0);
    err("socket(STREAM, IPPROTO_UDP)", EPROTONOSUPPORT, SYS_socket, AF_INET, SOCK_STREAM, IPPROTO_UDP, 0, 0, 0);
    err("socket(DGRAM, IPPROTO_TCP)", EPROTONOSUPPORT, SYS_socket, AF_INET, SOCK_DGRAM, IPPROTO_TCP, 0, 0, 0);
    err("socket(STREAM, protocol 9999)", EINVAL, SYS_socket, AF_INET, SOCK_STREAM, 9999, 0, 0, 0);
    err("socketpair(AF_INET)", EOPNOTSUPP, SYS_socketpair, AF_INET, SOCK_STREAM, 0, (long)buf, 0, 0);
    err("socketpair(AF_INET, wild fds)", 0, SYS_socketpair, AF_INET, SOCK_DGRAM, 0, BAD, 0, 0);

    /* Addresses: pointers, lengths, families. */
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "bind(%s sockaddr)", pn[i]);
        err(name, EFAULT, SYS_bind, s, ptrs[i], sizeof sin, 0, 0, 0);
        snprintf(name, sizeof name, "connect(%s sockaddr)", pn[i]);
        err(name, EFAULT, SYS_connect, u, ptrs[i], sizeof sin, 0, 0, 0);
        snprintf(name, sizeof name, "sendto(%s sockaddr)", pn[i]);
        /* Linux: a NULL address with a length is "no address" on UDP: EDESTADDRREQ. */
        err(name, i == 0 ? EDESTADDRREQ : EFAULT, SYS_sendto, u, (long)"x", 1, 0, ptrs[i], sizeof sin);
        snprintf(name, sizeof name, "sendto(%s buffer)", pn[i]);
        struct sockaddr_in to = addr("10.0.2.2", 9);
        if (i)
            err(name, EFAULT, SYS_sendto, u, ptrs[i], 100, 0, (long)&to, sizeof to);
        len = sizeof sin;
        snprintf(name, sizeof name, "getsockname(%s sockaddr)", pn[i]);
        err(name, EFAULT, SYS_getsockname, u, ptrs[i], (long)&len, 0, 0, 0);
        snprintf(name, sizeof name, "getsockname(%s length)", pn[i]);
        err(name, EFAULT, SYS_getsockname, u, (long)&sin, ptrs[i], 0, 0, 0);
        snprintf(name, sizeof name, "setsockopt(%s value)", pn[i]);
        err(name, EFAULT, SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, ptrs[i], 4, 0);
        len = 4;
        snprintf(name, sizeof name, "getsockopt(%s value)", pn[i]);
        err(name, EFAULT, SYS_getsockopt, s, SOL_SOCKET, SO_REUSEADDR, ptrs[i], (long)&len, 0);
        snprintf(name, sizeof name, "getsockopt(%s length)", pn[i]);
        err(name, EFAULT, SYS_getsockopt, s, SOL_SOCKET, SO_REUSEADDR, (long)buf, ptrs[i], 0);
        snprintf(name, sizeof name, "sendmsg(%s msghdr)", pn[i]);
        err(name, EFAULT, SYS_sendmsg, u, ptrs[i], 0, 0, 0, 0);
        snprintf(name, sizeof name, "recvmsg(%s msghdr)", pn[i]);
        err(name, EFAULT, SYS_recvmsg, u, ptrs[i], MSG_DONTWAIT, 0, 0, 0);
        snprintf(name, sizeof name, "ioctl(SIOCGIFADDR, %s ifreq)", pn[i]);
        err(name, EFAULT, SYS_ioctl, u, SIOCGIFADDR, ptrs[i], 0, 0, 0);
        snprintf(name, sizeof name, "ioctl(SIOCGIFCONF, %s ifconf)", pn[i]);
        err(name, EFAULT, SYS_ioctl, u, SIOCGIFCONF, ptrs[i], 0, 0, 0);
        snprintf(name, sizeof name, "ioctl(FIONREAD, %s int)", pn[i]);
        err(name, EFAULT, SYS_ioctl, u, FIONREAD, ptrs[i], 0, 0, 0);
    }
    long lens[] = {0, 1, 15, -1, 1 << 20, 0x7fffffff};
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "bind(length %ld)", lens[i]);
        err(name, EINVAL, SYS_bind, s, (long)&sin, lens[i], 0, 0, 0);
        snprintf(name, sizeof name, "connect(length %ld)", lens[i]);
        err(name, EINVAL, SYS_connect, s, (long)&sin, lens[i], 0, 0, 0);
        struct sockaddr_in to = addr("10.0.2.2", 9);
        snprintf(name, sizeof name, "sendto(address length %ld)", lens[i]);
        err(name, EINVAL, SYS_sendto, u, (long)"x", 1, 0, (long)&to, lens[i]);
    }
    err("bind(AF_INET6 address on AF_INET socket)", EAFNOSUPPORT, SYS_bind, s, (long)&sin6, sizeof sin6, 0, 0, 0);
    err("bind(family 9999)", EAFNOSUPPORT, SYS_bind, s, (long)&wrongfam, sizeof wrongfam, 0, 0, 0);
    err("connect(family 9999)", EAFNOSUPPORT, SYS_connect, s, (long)&wrongfam, sizeof wrongfam, 0, 0, 0);
    {
        struct sockaddr_in far = addr("1.2.3.4", 0);
        err("bind(address not ours)", EADDRNOTAVAIL, SYS_bind, s, (long)&far, sizeof far, 0, 0, 0);
        struct sockaddr_in bc = addr("255.255.255.255", 9);
        err("sendto(broadcast without SO_BROADCAST)", EACCES, SYS_sendto, u, (long)"x", 1, 0, (long)&bc, sizeof bc);
    }
    len = (socklen_t)-1;
    err("getsockname(length -1)", EINVAL, SYS_getsockname, u, (long)&sin, (long)&len, 0, 0, 0);
    len = sizeof sin;
    err("getpeername(unconnected TCP)", ENOTCONN, SYS_getpeername, s, (long)&sin, (long)&len, 0, 0, 0);
    err("getpeername(unconnected UDP, wild)", ENOTCONN, SYS_getpeername, u, BAD, BAD, 0, 0, 0);

    /* Data calls: lengths, flags, message headers. */
    {
        struct sockaddr_in to = addr("10.0.2.2", 9);
        err("sendto(length 70000)", EMSGSIZE, SYS_sendto, u, (long)buf, 70000, 0, (long)&to, sizeof to);
        err("sendto(length -1)", 0, SYS_sendto, u, (long)buf, -1L, 0, (long)&to, sizeof to);
        err("send(unconnected TCP)", EPIPE, SYS_sendto, s, (long)"x", 1, MSG_NOSIGNAL, 0, 0);
        err("recvfrom(unconnected TCP)", ENOTCONN, SYS_recvfrom, s, (long)buf, 10, 0, 0, 0);
        err("recvfrom(UDP, nothing, MSG_DONTWAIT)", EAGAIN, SYS_recvfrom, u, (long)buf, 10, MSG_DONTWAIT, 0, 0);
        err("recvfrom(UDP, nothing, wild buffer)", EAGAIN, SYS_recvfrom, u, BAD, 10, MSG_DONTWAIT, BAD, BAD);
        err("recvfrom(MSG_OOB on UDP)", 0, SYS_recvfrom, u, (long)buf, 10, MSG_OOB | MSG_DONTWAIT, 0, 0);
        struct iovec iov = {buf, 10};
        struct msghdr m = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1};
        m.msg_iov = (void *)BAD;
        err("sendmsg(wild iov)", EFAULT, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        m.msg_iov = &iov;
        m.msg_iovlen = 1 << 20;
        err("sendmsg(iovlen 1M)", EMSGSIZE, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        m.msg_iovlen = -1;
        err("sendmsg(iovlen -1)", EMSGSIZE, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        m.msg_iovlen = 1;
        iov.iov_base = (void *)BAD;
        err("sendmsg(iov with a wild base)", EFAULT, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        iov.iov_base = buf;
        iov.iov_len = (size_t)-1;
        err("sendmsg(iov length -1)", EINVAL, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        iov.iov_len = 10;
        m.msg_name = (void *)BAD;
        err("sendmsg(wild name)", EFAULT, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        m.msg_name = &to;
        m.msg_namelen = 3;
        err("sendmsg(name length 3)", EINVAL, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        m.msg_namelen = sizeof to;
        m.msg_control = (void *)BAD;
        m.msg_controllen = 64;
        err("sendmsg(wild control)", EFAULT, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        m.msg_control = buf;
        m.msg_controllen = 1 << 30;
        err("sendmsg(control length 1 GiB)", ENOBUFS, SYS_sendmsg, u, (long)&m, 0, 0, 0, 0);
        m.msg_control = 0;
        m.msg_controllen = 0;
        m.msg_iov = (void *)BAD;
        err("recvmsg(wild iov)", EFAULT, SYS_recvmsg, u, (long)&m, MSG_DONTWAIT, 0, 0, 0);
        m.msg_iov = &iov;
        m.msg_iovlen = 1 << 20;
        err("recvmsg(iovlen 1M)", EMSGSIZE, SYS_recvmsg, u, (long)&m, MSG_DONTWAIT, 0, 0, 0);
        m.msg_iovlen = 1;
        err("sendmmsg(wild vector)", EFAULT, SYS_sendmmsg, u, BAD, 4, 0, 0, 0);
        err("recvmmsg(wild vector)", EFAULT, SYS_recvmmsg, u, BAD, 4, MSG_DONTWAIT, 0, 0);
    }

    /* Options: levels, names, lengths, values. */
    err("setsockopt(level 9999)", ENOPROTOOPT, SYS_setsockopt, s, 9999, 1, (long)&one, 4, 0);
    err("setsockopt(SOL_SOCKET name 9999)", ENOPROTOOPT, SYS_setsockopt, s, SOL_SOCKET, 9999, (long)&one, 4, 0);
    err("setsockopt(IPPROTO_TCP name 9999)", ENOPROTOOPT, SYS_setsockopt, s, IPPROTO_TCP, 9999, (long)&one, 4, 0);
    err("setsockopt(IPPROTO_IP name 9999)", ENOPROTOOPT, SYS_setsockopt, s, IPPROTO_IP, 9999, (long)&one, 4, 0);
    err("setsockopt(IPV6_V6ONLY on AF_INET)", ENOPROTOOPT, SYS_setsockopt, s, IPPROTO_IPV6, IPV6_V6ONLY, (long)&one, 4, 0);
    err("setsockopt(TCP_NODELAY on UDP)", ENOPROTOOPT, SYS_setsockopt, u, IPPROTO_TCP, TCP_NODELAY, (long)&one, 4, 0);
    long olens[] = {0, 1, 3, -1};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "setsockopt(SO_REUSEADDR, length %ld)", olens[i]);
        err(name, EINVAL, SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, (long)&one, olens[i], 0);
        snprintf(name, sizeof name, "setsockopt(TCP_NODELAY, length %ld)", olens[i]);
        err(name, EINVAL, SYS_setsockopt, s, IPPROTO_TCP, TCP_NODELAY, (long)&one, olens[i], 0);
        snprintf(name, sizeof name, "setsockopt(SO_LINGER, length %ld)", olens[i]);
        err(name, EINVAL, SYS_setsockopt, s, SOL_SOCKET, SO_LINGER, (long)&one, olens[i], 0);
    }
    err("setsockopt(SO_LINGER, length 4)", EINVAL, SYS_setsockopt, s, SOL_SOCKET, SO_LINGER, (long)&one, 4, 0);
    {
        int v = 0;
        err("setsockopt(IP_TTL 0)", EINVAL, SYS_setsockopt, u, IPPROTO_IP, IP_TTL, (long)&v, 4, 0);
        v = 256;
        err("setsockopt(IP_TTL 256)", EINVAL, SYS_setsockopt, u, IPPROTO_IP, IP_TTL, (long)&v, 4, 0);
        v = -5;
        ok("setsockopt(SO_RCVBUF -5) (Linux clamps)", setsockopt(u, SOL_SOCKET, SO_RCVBUF, &v, 4));
        v = 0x7fffffff;
        ok("setsockopt(SO_SNDBUF 2^31-1) (Linux clamps)", setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, 4));
        ok("setsockopt(SO_REUSEADDR, length 64) (Linux reads 4)", syscall(SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, (long)buf, 64, 0));
    }
    len = 4;
    /* Linux's getsockopt says EOPNOTSUPP for a level it does not know (setsockopt: ENOPROTOOPT). */
    err("getsockopt(level 9999)", EOPNOTSUPP, SYS_getsockopt, s, 9999, 1, (long)buf, (long)&len, 0);
    len = 4;
    err("getsockopt(SOL_SOCKET name 9999)", ENOPROTOOPT, SYS_getsockopt, s, SOL_SOCKET, 9999, (long)buf, (long)&len, 0);
    len = (socklen_t)-1;
    err("getsockopt(length -1)", EINVAL, SYS_getsockopt, s, SOL_SOCKET, SO_ERROR, (long)buf, (long)&len, 0);

    /* Connection calls in the wrong state. */
    err("listen(UDP)", EOPNOTSUPP, SYS_listen, u, 5, 0, 0, 0, 0);
    err("accept4(not listening)", EINVAL, SYS_accept4, s, 0, 0, 0, 0, 0);
    err("accept4(UDP)", EOPNOTSUPP, SYS_accept4, u, 0, 0, 0, 0, 0);
    err("accept4(bad flags)", EINVAL, SYS_accept4, l, 0, 0, 0x12345678, 0, 0);
    err("accept4(nothing pending, wild address)", EAGAIN, SYS_accept4, l, BAD, BAD, SOCK_NONBLOCK, 0, 0);
    err("shutdown(how 99)", EINVAL, SYS_shutdown, s, 99, 0, 0, 0, 0);
    err("shutdown(how -1)", EINVAL, SYS_shutdown, s, -1, 0, 0, 0, 0);
    {
        /* Linux marks even an unconnected socket shut down: a throwaway one. */
        int t = socket(AF_INET, SOCK_STREAM, 0);
        err("shutdown(unconnected TCP)", ENOTCONN, SYS_shutdown, t, SHUT_RDWR, 0, 0, 0, 0);
        close(t);
    }
    err("connect(listening socket)", EISCONN, SYS_connect, l, (long)&sin, sizeof sin, 0, 0, 0);

    /* Interface ioctls with names that are not there. */
    {
        struct ifreq r;
        memset(&r, 0, sizeof r);
        strcpy(r.ifr_name, "nosuch0");
        err("ioctl(SIOCGIFADDR, no such interface)", ENODEV, SYS_ioctl, u, SIOCGIFADDR, (long)&r, 0, 0, 0);
        memset(r.ifr_name, 'A', sizeof r.ifr_name);
        err("ioctl(SIOCGIFFLAGS, unterminated name)", ENODEV, SYS_ioctl, u, SIOCGIFFLAGS, (long)&r, 0, 0, 0);
        struct ifconf c = {.ifc_len = 4096, .ifc_buf = (void *)BAD};
        err("ioctl(SIOCGIFCONF, wild buffer)", EFAULT, SYS_ioctl, u, SIOCGIFCONF, (long)&c, 0, 0, 0);
        err("ioctl(unknown request)", 0, SYS_ioctl, u, 0x89ff, (long)&r, 0, 0, 0);
    }
}

/* AF_INET6 sockets with bad arguments; then the same sockets still work over ::1. */
static void abuse6(int s6, int u6) {
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);
    struct sockaddr_in6 fam = a6;
    fam.sin6_family = AF_INET;
    struct sockaddr_in four = addr("127.0.0.1", 9);
    int one = 1;
    err("socket(AF_INET6, SOCK_STREAM, IPPROTO_UDP)", EPROTONOSUPPORT, SYS_socket, AF_INET6, SOCK_STREAM, IPPROTO_UDP, 0, 0, 0);
    err("socket(AF_INET6, bad type)", EINVAL, SYS_socket, AF_INET6, 0x4000 | SOCK_STREAM, 0, 0, 0, 0);
    err("socketpair(AF_INET6)", EOPNOTSUPP, SYS_socketpair, AF_INET6, SOCK_STREAM, 0, (long)&one, 0, 0);
    err("bind(v6, len 0)", EINVAL, SYS_bind, s6, (long)&a6, 0, 0, 0, 0);
    err("bind(v6, len 23)", EINVAL, SYS_bind, s6, (long)&a6, 23, 0, 0, 0);
    err("bind(v6, len -1)", EINVAL, SYS_bind, s6, (long)&a6, -1, 0, 0, 0);
    err("bind(v6, len 1 MiB)", EINVAL, SYS_bind, s6, (long)&a6, 1 << 20, 0, 0, 0);
    err("bind(v6, NULL)", EFAULT, SYS_bind, s6, 0, sizeof a6, 0, 0, 0);
    err("bind(v6, wild)", EFAULT, SYS_bind, s6, BAD, sizeof a6, 0, 0, 0);
    err("bind(v6, kernel)", EFAULT, SYS_bind, s6, KERNEL, sizeof a6, 0, 0, 0);
    err("bind(v6, family AF_INET)", EAFNOSUPPORT, SYS_bind, s6, (long)&fam, sizeof fam, 0, 0, 0);
    err("connect(v6, sockaddr_in)", EINVAL, SYS_connect, s6, (long)&four, sizeof four, 0, 0, 0);
    err("connect(v6, family AF_INET, len 28)", EAFNOSUPPORT, SYS_connect, s6, (long)&fam, sizeof fam, 0, 0, 0);
    err("sendto(udp6, family 99)", EINVAL, SYS_sendto, u6, (long)"x", 1, 0, (long)&(struct sockaddr_in6){.sin6_family = 99}, sizeof a6);
    err("sendto(udp6, len 1)", EINVAL, SYS_sendto, u6, (long)"x", 1, 0, (long)&a6, 1);
    err("sendto(udp6, len 20)", EINVAL, SYS_sendto, u6, (long)"x", 1, 0, (long)&a6, 20);
    err("sendto(udp6, wild name)", EFAULT, SYS_sendto, u6, (long)"x", 1, 0, BAD, sizeof a6);
    err("setsockopt(IPV6_V6ONLY, len 0)", EINVAL, SYS_setsockopt, s6, IPPROTO_IPV6, IPV6_V6ONLY, (long)&one, 0, 0);
    err("setsockopt(IPV6_V6ONLY, len 3)", EINVAL, SYS_setsockopt, s6, IPPROTO_IPV6, IPV6_V6ONLY, (long)&one, 3, 0);
    err("setsockopt(IPV6_V6ONLY, wild)", EFAULT, SYS_setsockopt, s6, IPPROTO_IPV6, IPV6_V6ONLY, BAD, 4, 0);
    err("setsockopt(IPPROTO_IPV6, 200)", ENOPROTOOPT, SYS_setsockopt, s6, IPPROTO_IPV6, 200, (long)&one, 4, 0);
    err("getsockopt(IPPROTO_IPV6, 200)", ENOPROTOOPT, SYS_getsockopt, s6, IPPROTO_IPV6, 200, (long)&one, (long)&(socklen_t){4}, 0);
    err("getsockopt(IPV6_V6ONLY, wild length)", EFAULT, SYS_getsockopt, s6, IPPROTO_IPV6, IPV6_V6ONLY, (long)&one, BAD, 0);
    err("getsockname(v6, wild)", EFAULT, SYS_getsockname, s6, BAD, (long)&(socklen_t){28}, 0, 0, 0);
    err("getpeername(v6, unconnected)", ENOTCONN, SYS_getpeername, s6, (long)&a6, (long)&(socklen_t){28}, 0, 0, 0);
    /* V6ONLY set: a v4-mapped or IPv4 destination is unreachable. */
    int v6only = socket(AF_INET6, SOCK_DGRAM, 0);
    setsockopt(v6only, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    err("sendto(v6only, v4-mapped)", ENETUNREACH, SYS_sendto, v6only, (long)"x", 1, 0, (long)&mapped, sizeof mapped);
    err("sendto(v6only, sockaddr_in)", EINVAL, SYS_sendto, v6only, (long)"x", 1, 0, (long)&four, sizeof four);
    err("bind(v6only, v4-mapped)", EINVAL, SYS_bind, v6only, (long)&mapped, sizeof mapped, 0, 0, 0);
    close(v6only);
}

/* The AF_INET6 sockets that took the abuse work: a UDP datagram and a TCP connection over
 * ::1 to a listener. */
static void after6(int s6, int u6) {
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 lo = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t n = sizeof lo;
    ok("bind+listen(::1)", bind(l, (struct sockaddr *)&lo, sizeof lo) == 0 && listen(l, 1) == 0 &&
                               getsockname(l, (struct sockaddr *)&lo, &n) == 0 ? 0 : -1);
    ok("connect(abused TCP6 socket)", connect(s6, (struct sockaddr *)&lo, sizeof lo));
    int c = accept(l, 0, 0);
    char b[8] = {0};
    ok("the connection carries a byte",
       c >= 0 && write(s6, "6", 1) == 1 && readable(c, 5000) && read(c, b, 1) == 1 && b[0] == '6' ? 0 : -1);
    close(c);
    close(l);
    int r = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 at = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT}, from;
    n = sizeof at;
    socklen_t fl = sizeof from;
    ok("abused UDP6 socket: a datagram there and back over ::1",
       bind(r, (struct sockaddr *)&at, sizeof at) == 0 && getsockname(r, (struct sockaddr *)&at, &n) == 0 &&
               sendto(u6, "u6", 2, 0, (struct sockaddr *)&at, sizeof at) == 2 && readable(r, 5000) &&
               recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&from, &fl) == 2 &&
               sendto(r, "6u", 2, 0, (struct sockaddr *)&from, fl) == 2 && readable(u6, 5000) &&
               recv(u6, b, sizeof b, 0) == 2 && !memcmp(b, "6u", 2)
           ? 0
           : -1);
    close(r);
}

static int run_abuse(const char *host, int tcp_port, int udp_port) {
    setvbuf(stdout, 0, _IONBF, 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in any = addr("0.0.0.0", 0);
    if (s < 0 || u < 0 || l < 0 || bind(l, (struct sockaddr *)&any, sizeof any) < 0 || listen(l, 4) < 0) {
        printf("FAIL netabuse: cannot make the sockets: %s\n", strerror(errno));
        return 1;
    }
    abuse(s, u, l);
    abuse(s, u, l); /* twice: nothing the first round left behind changes the answers */
    int s6 = socket(AF_INET6, SOCK_STREAM, 0), u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    if (s6 < 0 || u6 < 0) {
        printf("FAIL netabuse: cannot make the AF_INET6 sockets: %s\n", strerror(errno));
        return 1;
    }
    abuse6(s6, u6);
    abuse6(s6, u6);
    after6(s6, u6);
    close(s6);
    close(u6);

    /* The sockets that took the abuse still work. */
    struct sockaddr_in echo = addr(host, udp_port);
    const char msg[] = "after the abuse";
    int echoed = 0;
    for (int i = 0; i < 5 && !echoed; i++) {
        sendto(u, msg, sizeof msg, 0, (struct sockaddr *)&echo, sizeof echo);
        char b[64];
        while (readable(u, 2000)) {
            ssize_t n = recv(u, b, sizeof b, 0);
            if (n == sizeof msg && memcmp(b, msg, n) == 0) {
                echoed = 1;
                break;
            }
        }
    }
    calls++;
    if (!echoed) {
        wrong++;
        printf("UNEXPECTED the abused UDP socket got no echo from %s:%d\n", host, udp_port);
    }
    struct sockaddr_in web = addr(host, tcp_port);
    ok("connect(abused TCP socket)", connect(s, (struct sockaddr *)&web, sizeof web));
    char line[64] = {0};
    ssize_t got = 0;
    while (got < (ssize_t)sizeof line - 1 && !strchr(line, '\n')) {
        if (!readable(s, 10000))
            break;
        ssize_t n = read(s, line + got, sizeof line - 1 - got);
        if (n <= 0)
            break;
        got += n;
    }
    calls++;
    if (strncmp(line, "hello ", 6) != 0) {
        wrong++;
        printf("UNEXPECTED the abused TCP socket read %zd bytes \"%s\", not a hello line\n", got, line);
    }
    close(s);
    close(u);
    close(l);
    if (wrong) {
        printf("FAIL netabuse: %d of %d calls came out wrong\n", wrong, calls);
        return 1;
    }
    printf("PASS netabuse %d calls\n", calls);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "wait") == 0)
        return wait_done(atoi(argv[2]), atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "abuse") == 0)
        return run_abuse(argv[2], atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: netabuse abuse HOST TCP_PORT UDP_ECHO_PORT | netabuse wait PORT SECONDS\n");
    return 2;
}
