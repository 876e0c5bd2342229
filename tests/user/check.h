/* Shared helpers for the C test suite (tests/user/t_*.c): each check prints exactly one
 * line, "PASS: <area>.<name>" or "FAIL: <area>.<name>: <reason>", and check_done() prints
 * "SUMMARY: <area> P passed F failed" and returns the exit status (1 if anything failed).
 * Checks of features AdrOS lacks so far sit inside "#ifdef CHECK_ALL" (build a program
 * with -DCHECK_ALL to run them too); they are listed where each program says so.
 * Not a program itself: xtask compiles only the .c files in tests/user. */
#ifndef ADROS_CHECK_H
#define ADROS_CHECK_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *check_area = "?";
static int check_passed, check_failed;

static void check_init(const char *area) {
    check_area = area;
    setvbuf(stdout, 0, _IONBF, 0);
}

static void pass(const char *name) {
    check_passed++;
    printf("PASS: %s.%s\n", check_area, name);
}

__attribute__((format(printf, 2, 3))) static void fail(const char *name, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    check_failed++;
    printf("FAIL: %s.%s: %s\n", check_area, name, buf);
}

/* CHECK(name, condition): the condition is evaluated once; errno right after it goes in
 * the failure line. */
#define CHECK(name, cond)                                                                  \
    do {                                                                                   \
        int ok_ = !!(cond);                                                                \
        int e_ = errno;                                                                    \
        if (ok_)                                                                           \
            pass(name);                                                                    \
        else                                                                               \
            fail(name, "%s (errno %d %s)", #cond, e_, strerror(e_));                       \
    } while (0)

/* CHECKF(name, condition, fmt, ...): like CHECK with a custom reason. */
#define CHECKF(name, cond, ...)                                                            \
    do {                                                                                   \
        int ok_ = !!(cond);                                                                \
        int e_ = errno;                                                                    \
        if (ok_)                                                                           \
            pass(name);                                                                    \
        else {                                                                             \
            char m_[200];                                                                  \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                          \
            fail(name, "%s (errno %d %s)", m_, e_, strerror(e_));                          \
        }                                                                                  \
    } while (0)

/* The failure of a call that was expected to fail with a given errno. */
#define CHECK_ERR(name, call, err)                                                         \
    do {                                                                                   \
        errno = 0;                                                                         \
        long r_ = (long)(call);                                                            \
        int e_ = errno;                                                                    \
        if (r_ == -1 && e_ == (err))                                                       \
            pass(name);                                                                    \
        else                                                                               \
            fail(name, "%s returned %ld errno %d (%s), expected %s", #call, r_, e_,        \
                 strerror(e_), #err);                                                      \
    } while (0)

static int check_done(void) {
    printf("SUMMARY: %s %d passed %d failed\n", check_area, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* Reads a whole file into buf (NUL-terminated); returns its length or -1. */
__attribute__((unused)) static long read_file(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = 0;
    fclose(f);
    return (long)n;
}

#endif
