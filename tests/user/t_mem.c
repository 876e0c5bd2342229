/* Memory: anonymous, private and shared file mappings, munmap, mprotect with SIGSEGV handlers,
 * mremap, madvise, brk, MAP_FIXED, copy-on-write after fork, shared anonymous memory. */
#include "check.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_code, fault_sig;
static void on_fault(int s, siginfo_t *si, void *uc) {
    (void)uc;
    fault_sig = s;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(jb, 1);
}

/* 1 if writing (or reading) *p faults. */
static int faults(volatile char *p, int write) {
    fault_sig = 0;
    fault_addr = 0;
    if (sigsetjmp(jb, 1) == 0) {
        if (write) *p = 1;
        else (void)*p;
        return 0;
    }
    return 1;
}

static int wait_code(pid_t p) {
    int st;
    if (waitpid(p, &st, 0) != p) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static int recurse(int n) {
    volatile char pad[4096];
    pad[0] = (char)n;
    return n == 0 ? pad[0] : recurse(n - 1) + pad[0];
}

int main(void) {
    check_init("mem");
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    sigaction(SIGBUS, &sa, 0);
    long pg = sysconf(_SC_PAGESIZE);
    CHECK("page_size", pg == 4096);

    char *m = mmap(0, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap_anon", m != MAP_FAILED && ((uintptr_t)m & (pg - 1)) == 0);
    int zero = 1;
    for (long i = 0; i < 8 * pg; i++) zero &= m[i] == 0;
    CHECK("mmap_anon_zeroed", zero);
    memset(m, 'a', 8 * pg);
    CHECK("mmap_anon_writable", m[8 * pg - 1] == 'a');
    CHECK("munmap_partial", munmap(m + 2 * pg, pg) == 0);
    CHECK("munmap_hole_faults", faults(m + 2 * pg, 0) && fault_sig == SIGSEGV && fault_addr == m + 2 * pg);
    CHECK("segv_code_maperr", fault_code == SEGV_MAPERR);
    CHECK("munmap_neighbours_intact", !faults(m + pg, 0) && !faults(m + 3 * pg, 0) && m[3 * pg] == 'a');
    CHECK("mprotect_readonly", mprotect(m, pg, PROT_READ) == 0 && !faults(m, 0));
    CHECK("mprotect_write_faults", faults(m + 5, 1) && fault_sig == SIGSEGV && fault_addr == m + 5);
    CHECK("segv_code_accerr", fault_code == SEGV_ACCERR);
    CHECK("mprotect_restore", mprotect(m, pg, PROT_READ | PROT_WRITE) == 0 && !faults(m, 1));
    CHECK("mprotect_prot_none", mprotect(m + 4 * pg, pg, PROT_NONE) == 0);
    CHECK("prot_none_read_faults", faults(m + 4 * pg, 0) && fault_addr == m + 4 * pg);
    CHECK("prot_none_code_accerr", fault_code == SEGV_ACCERR);
    CHECK("prot_none_write_faults", faults(m + 4 * pg + 8, 1) && fault_addr == m + 4 * pg + 8);
    CHECK("prot_none_restore_keeps_data", mprotect(m + 4 * pg, pg, PROT_READ) == 0 && !faults(m + 4 * pg, 0) && m[4 * pg] == 'a');
    CHECK_ERR("mprotect_unaligned", syscall(SYS_mprotect, m + 1, pg, PROT_READ), EINVAL);
    CHECK_ERR("mprotect_unmapped", mprotect(m + 2 * pg, pg, PROT_READ), ENOMEM);
    CHECK("munmap_all", munmap(m, 8 * pg) == 0 && faults(m, 0));
    CHECK("munmap_unmapped_ok", munmap(m, pg) == 0);
    CHECK_ERR("munmap_unaligned", munmap(m + 1, pg), EINVAL);
    CHECK_ERR("mmap_len_zero", (long)mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
    CHECK_ERR("mmap_no_share_type", (long)mmap(0, pg, PROT_READ, MAP_ANONYMOUS, -1, 0), EINVAL);
    CHECK_ERR("mmap_bad_fd", (long)mmap(0, pg, PROT_READ, MAP_PRIVATE, 999, 0), EBADF);
    CHECK("null_deref_faults", faults((volatile char *)(uintptr_t)atoi("0"), 0) && fault_addr == 0);
    CHECK("text_not_writable", faults((volatile char *)(uintptr_t)&main, 1) && fault_sig == SIGSEGV);

    /* big mapping, touched sparsely */
    size_t big = 64 << 20;
    char *b = mmap(0, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int okb = b != MAP_FAILED;
    for (size_t i = 0; okb && i < big; i += 1 << 20) b[i] = (char)i;
    CHECK("mmap_64m_sparse", okb && b[big - (1 << 20)] == (char)(big - (1 << 20)));
    if (okb) munmap(b, big);

    /* MAP_FIXED */
    char *r = mmap(0, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(r, 'r', 4 * pg);
    char *f = mmap(r + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK("map_fixed_replaces", f == r + pg && f[0] == 0 && r[0] == 'r' && r[2 * pg] == 'r');
    CHECK_ERR("map_fixed_unaligned", (long)mmap(r + 1, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), EINVAL);
    char *h = mmap(r + 100 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap_hint_not_fixed", h != MAP_FAILED && mmap(r, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != r);

    /* mremap */
    char *g = mremap(r, 4 * pg, 16 * pg, MREMAP_MAYMOVE);
    CHECK("mremap_grow_keeps_data", g != MAP_FAILED && g[0] == 'r' && g[3 * pg] == 'r' && g[pg] == 0);
    CHECK("mremap_grown_zeroed_writable", g != MAP_FAILED && g[15 * pg] == 0 && (g[15 * pg] = 1) == 1);
    char *s2 = mremap(g, 16 * pg, 2 * pg, 0);
    CHECK("mremap_shrink_in_place", s2 == g && faults(g + 3 * pg, 0));
    char *blk = mmap(0, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(blk + pg, 2 * pg);
    char *wall = mmap(blk + pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK_ERR("mremap_no_maymove_enomem", (long)(wall == blk + pg ? mremap(blk, pg, 4 * pg, 0) : 0), ENOMEM);
    CHECK_ERR("mremap_unaligned", (long)mremap(blk + 1, pg, 2 * pg, MREMAP_MAYMOVE), EINVAL);

    /* madvise */
    char *d = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(d, 'd', 2 * pg);
    CHECK("madvise_dontneed_zeroes", madvise(d, pg, MADV_DONTNEED) == 0 && d[0] == 0 && d[pg] == 'd');
    CHECK("madvise_dontneed_writable_again", (d[5] = 'x') == 'x' && d[5] == 'x' && d[6] == 0);
    CHECK("madvise_willneed", madvise(d, 2 * pg, MADV_WILLNEED) == 0);
    CHECK_ERR("madvise_bad_advice", madvise(d, pg, 12345), EINVAL);
    CHECK("msync_anon", msync(d, pg, MS_SYNC) == 0);

    /* brk */
    /* (musl's sbrk only reports the break, so use the system call) */
    char *b0 = (char *)syscall(SYS_brk, 0);
    char *nb = (char *)syscall(SYS_brk, b0 + 3 * pg);
    CHECK("brk_grow", b0 && nb == b0 + 3 * pg);
    memset(b0, 'b', 3 * pg);
    CHECK("brk_memory_usable", b0[3 * pg - 1] == 'b');
    CHECK("brk_shrink", (char *)syscall(SYS_brk, b0 + pg) == b0 + pg && (char *)syscall(SYS_brk, 0) == b0 + pg);
    CHECK("brk_shrunk_faults", faults(b0 + 2 * pg + 10, 0));
    CHECK("brk_below_start_refused", (char *)syscall(SYS_brk, b0 - (64L << 20)) == b0 + pg);

    /* exec permission: run code from a PROT_EXEC mapping */
    unsigned char *code = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#if defined(__aarch64__)
    static const unsigned char ret42[] = {0x40, 0x05, 0x80, 0x52, 0xc0, 0x03, 0x5f, 0xd6}; /* mov w0,#42; ret */
#else
    static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax,42; ret */
#endif
    memcpy(code, ret42, sizeof ret42);
    mprotect(code, pg, PROT_READ | PROT_EXEC);
    /* arm64's instruction cache is not coherent with data writes: clean and invalidate
     * (dc cvau / ic ivau from user space; a no-op on x86_64). */
    __builtin___clear_cache((char *)code, (char *)code + sizeof ret42);
    CHECK("exec_mapping_runs", ((int (*)(void))code)() == 42);

    /* private file mapping */
    int fd = open("/tmp/t_mem.file", O_RDWR | O_CREAT | O_TRUNC, 0644);
    char page[8192];
    for (int i = 0; i < 8192; i++) page[i] = (char)('A' + i / 4096);
    write(fd, page, sizeof page);
    char *fm = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK("mmap_file_private", fm != MAP_FAILED && fm[0] == 'A' && fm[pg] == 'B');
    fm[0] = 'z';
    char rb = 0;
    CHECK("mmap_private_write_not_in_file", pread(fd, &rb, 1, 0) == 1 && rb == 'A' && fm[0] == 'z');
    char *fo = mmap(0, pg, PROT_READ, MAP_PRIVATE, fd, pg);
    CHECK("mmap_file_offset", fo != MAP_FAILED && fo[0] == 'B');
    CHECK_ERR("mmap_file_unaligned_offset", (long)mmap(0, pg, PROT_READ, MAP_PRIVATE, fd, 100), EINVAL);
    close(fd);
    CHECK("mmap_survives_close", fm[pg + 1] == 'B');
    fd = open("/tmp/t_mem.file", O_RDONLY);
    CHECK_ERR("mmap_shared_write_on_rdonly_fd", (long)mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    char *pw = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK("mmap_private_write_on_rdonly_fd", pw != MAP_FAILED && (pw[0] = 'q') == 'q');
    close(fd);
    fd = open("/tmp/t_mem.file", O_WRONLY);
    CHECK_ERR("mmap_on_wronly_fd", (long)mmap(0, pg, PROT_READ, MAP_PRIVATE, fd, 0), EACCES);
    close(fd);
    unlink("/tmp/t_mem.file");
    fd = open("/dev/null", O_RDONLY);
    close(fd);

    /* shared file mappings: one set of pages per file, coherent with read/write */
    fd = open("/tmp/t_mem.shared", O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, page, sizeof page);
    char *s1 = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *t2 = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pg);
    CHECK("mmap_shared_file_writable", s1 != MAP_FAILED && t2 != MAP_FAILED && s1[0] == 'A' && t2[0] == 'B');
    s1[pg + 1] = 'x';
    CHECK("mmap_shared_file_two_mappings", t2[1] == 'x');
    memcpy(s1, "hello", 5);
    char rbuf[8] = {0};
    CHECK("mmap_shared_store_seen_by_read", pread(fd, rbuf, 5, 0) == 5 && memcmp(rbuf, "hello", 5) == 0);
    CHECK("mmap_shared_write_seen_in_map", pwrite(fd, "WORLD", 5, 10) == 5 && memcmp(s1 + 10, "WORLD", 5) == 0);
    lseek(fd, pg + 2, SEEK_SET);
    CHECK("mmap_shared_write2_seen_in_map", write(fd, "yz", 2) == 2 && t2[2] == 'y' && s1[pg + 3] == 'z');
    CHECK("msync_shared_file", msync(s1, 2 * pg, MS_SYNC) == 0);
    CHECK_ERR("msync_unaligned", msync(s1 + 1, pg, MS_SYNC), EINVAL);
    pid_t c = fork();
    if (c == 0) {
        s1[100] = 'c'; /* inherited mapping */
        int cfd = open("/tmp/t_mem.shared", O_RDWR);
        char *own = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (own == MAP_FAILED) _exit(1);
        own[200] = 'd'; /* a mapping of its own */
        _exit(own[100] == 'c' ? 0 : 2);
    }
    CHECK("mmap_shared_child_sees_parent_file_page", wait_code(c) == 0);
    CHECK("mmap_shared_child_stores_visible", s1[100] == 'c' && s1[200] == 'd');
    rbuf[0] = 0;
    CHECK("mmap_shared_child_stores_in_file", pread(fd, rbuf, 1, 200) == 1 && rbuf[0] == 'd');
    CHECK("munmap_shared_file", munmap(s1, 2 * pg) == 0 && munmap(t2, pg) == 0);
    close(fd);
    fd = open("/tmp/t_mem.shared", O_RDONLY);
    rbuf[0] = 0;
    CHECK("mmap_shared_file_after_unmap", pread(fd, rbuf, 5, 0) == 5 && memcmp(rbuf, "hello", 5) == 0);
    char *sro = mmap(0, pg, PROT_READ, MAP_SHARED, fd, 0);
    CHECK("mmap_shared_readonly_fd", sro != MAP_FAILED && sro[0] == 'h');
    CHECK_ERR("mprotect_write_shared_readonly_fd", mprotect(sro, pg, PROT_READ | PROT_WRITE), EACCES);
    munmap(sro, pg);
    close(fd);
    unlink("/tmp/t_mem.shared");

    /* fork: copy-on-write and shared anonymous memory */
    char *cw = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(cw, "parent");
    int p[2];
    pipe(p);
    c = fork();
    if (c == 0) {
        char x;
        int ok = strcmp(cw, "parent") == 0;
        strcpy(cw, "child");
        read(p[0], &x, 1);
        _exit(ok && strcmp(cw, "child") == 0 ? 0 : 1);
    }
    usleep(50000);
    CHECK("cow_parent_unchanged_by_child", strcmp(cw, "parent") == 0);
    strcpy(cw, "parent2");
    write(p[1], "x", 1);
    CHECK("cow_child_unchanged_by_parent", wait_code(c) == 0);
    close(p[0]);
    close(p[1]);
    volatile int *sh = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap_shared_anon", sh != MAP_FAILED);
    *sh = 1;
    c = fork();
    if (c == 0) {
        *sh = 99;
        _exit(0);
    }
    wait_code(c);
    CHECK("shared_anon_child_write_visible", *sh == 99);
    /* a read-only private page made writable after fork stays private */
    char *ro = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(ro, "ro");
    mprotect(ro, pg, PROT_READ);
    c = fork();
    if (c == 0) {
        mprotect(ro, pg, PROT_READ | PROT_WRITE);
        strcpy(ro, "child");
        _exit(0);
    }
    wait_code(c);
    CHECK("cow_readonly_then_mprotect", strcmp(ro, "ro") == 0);
    mprotect(ro, pg, PROT_NONE);
    c = fork();
    if (c == 0) {
        mprotect(ro, pg, PROT_READ | PROT_WRITE);
        _exit(strcmp(ro, "ro") == 0 && strcpy(ro, "kid") ? 0 : 1);
    }
    CHECK("prot_none_fork_keeps_data", wait_code(c) == 0 && mprotect(ro, pg, PROT_READ) == 0 && strcmp(ro, "ro") == 0);
    static int global_var = 5;
    c = fork();
    if (c == 0) {
        global_var = 6;
        _exit(global_var == 6 ? 0 : 1);
    }
    CHECK("cow_data_segment", wait_code(c) == 0 && global_var == 5);
    c = fork();
    if (c == 0) _exit(recurse(200) >= 0 ? 0 : 1); /* 800 KiB of stack */
    CHECK("stack_grows", wait_code(c) == 0);
    c = fork();
    if (c == 0) {
        signal(SIGSEGV, SIG_DFL);
        mprotect((void *)((uintptr_t)&global_var & ~(uintptr_t)(pg - 1)), pg, PROT_READ);
        global_var = 1;
        _exit(0);
    }
    CHECK("segv_default_kills", wait_code(c) == 100 + SIGSEGV);
    return check_done();
}
