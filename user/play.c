/* play: plays a RIFF/WAVE PCM file through OSS (/dev/dsp by default).
 *
 *   play [-d DEVICE] [-t] FILE.wav
 *
 * -t: also report the time from the first write() to the first sample played — the moment
 * SNDCTL_DSP_GETODELAY first reports fewer bytes queued than written — with writes made
 * non-blocking and the delay polled about every millisecond until then.
 *
 * Chunks may come in any order; LIST and other chunks are skipped. 8-bit unsigned and
 * 16-bit signed PCM (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM subformat) and
 * µ-law (format 7), 1 or 2 channels. A data chunk longer than the file plays what is
 * there, with a warning. Exit status: 0 played, 1 usage or I/O error, 2 not a WAV file
 * or a header that cannot be right (no fmt/data chunk, 0 channels, 0 Hz, non-PCM,
 * unsupported sample size or channel count), 3 the device refused. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SNDCTL_DSP_SYNC 0x5001
#define SNDCTL_DSP_SPEED 0xc0045002
#define SNDCTL_DSP_SETFMT 0xc0045005
#define SNDCTL_DSP_CHANNELS 0xc0045006
#define SNDCTL_DSP_GETODELAY 0x80045017
#define AFMT_MU_LAW 0x01
#define AFMT_U8 0x08
#define AFMT_S16_LE 0x10

static const char *prog = "play";

static uint32_t le32(const unsigned char *p) {
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t le16(const unsigned char *p) {
    return p[0] | p[1] << 8;
}

static int bad(const char *file, const char *why) {
    fprintf(stderr, "%s: %s: %s\n", prog, file, why);
    return 2;
}

static int read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += r;
    }
    return 0;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* -t: when the first write started, and whether (and when) the device began to play. */
static struct {
    int on;
    double t0;
    double first;
    uint64_t written;
} timing = {0, -1, -1, 0};

static void check_first(int out) {
    int delay;
    if (!timing.on || timing.first >= 0 || ioctl(out, SNDCTL_DSP_GETODELAY, &delay) < 0)
        return;
    if (delay >= 0 && (uint64_t)delay < timing.written)
        timing.first = now_ms() - timing.t0;
}

int main(int argc, char **argv) {
    const char *dev = "/dev/dsp";
    int i = 1;
    while (i < argc - 1) {
        if (strcmp(argv[i], "-d") == 0 && i + 2 < argc) {
            dev = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-t") == 0) {
            timing.on = 1;
            i++;
        } else {
            break;
        }
    }
    if (i != argc - 1) {
        fprintf(stderr, "usage: %s [-d DEVICE] [-t] FILE.wav\n", prog);
        return 1;
    }
    const char *file = argv[i];
    int fd = open(file, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
        return 1;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
        return 1;
    }
    uint64_t fsize = sb.st_size;
    unsigned char h[12];
    if (read_full(fd, h, 12) < 0 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4))
        return bad(file, "not a RIFF/WAVE file");
    int have_fmt = 0;
    uint16_t tag = 0, channels = 0, bits = 0;
    uint32_t rate = 0;
    uint64_t data_off = 0, data_len = 0, pos = 12;
    /* Walk the chunks: each is id, little-endian size, data padded to an even length. */
    for (int chunks = 0; pos + 8 <= fsize && chunks < 1000; chunks++) {
        unsigned char c[8];
        if (lseek(fd, pos, SEEK_SET) < 0 || read_full(fd, c, 8) < 0)
            break;
        uint64_t size = le32(c + 4);
        if (!memcmp(c, "fmt ", 4)) {
            unsigned char f[40];
            if (size < 16)
                return bad(file, "fmt chunk shorter than 16 bytes");
            size_t n = size < sizeof f ? size : sizeof f;
            if (read_full(fd, f, n) < 0)
                return bad(file, "fmt chunk runs past the end of the file");
            tag = le16(f);
            channels = le16(f + 2);
            rate = le32(f + 4);
            bits = le16(f + 14);
            if (tag == 0xfffe) { /* WAVE_FORMAT_EXTENSIBLE: the subformat GUID's first word */
                if (n < 26)
                    return bad(file, "extensible fmt chunk too short");
                tag = le16(f + 24);
            }
            have_fmt = 1;
        } else if (!memcmp(c, "data", 4)) {
            data_off = pos + 8;
            data_len = size;
            if (data_off + data_len > fsize) {
                fprintf(stderr,
                        "%s: %s: warning: data chunk says %llu bytes, the file has %llu: playing those\n",
                        prog, file, (unsigned long long)data_len,
                        (unsigned long long)(fsize - data_off));
                data_len = fsize - data_off;
            }
            if (have_fmt)
                break;
        }
        pos += 8 + size + (size & 1);
    }
    if (!have_fmt)
        return bad(file, "no fmt chunk");
    if (!data_off)
        return bad(file, "no data chunk");
    if (tag != 1 && tag != 7) {
        char why[64];
        snprintf(why, sizeof why, "format %#x is not PCM", tag);
        return bad(file, why);
    }
    if (channels == 0)
        return bad(file, "zero channels");
    if (rate == 0)
        return bad(file, "sample rate 0 Hz");
    if (channels > 2)
        return bad(file, "more than 2 channels are not supported");
    int afmt;
    if (tag == 7 && bits == 8)
        afmt = AFMT_MU_LAW;
    else if (tag == 1 && bits == 8)
        afmt = AFMT_U8;
    else if (tag == 1 && bits == 16)
        afmt = AFMT_S16_LE;
    else {
        char why[64];
        snprintf(why, sizeof why, "%u-bit samples are not supported (8 or 16)", bits);
        return bad(file, why);
    }
    int out = open(dev, timing.on ? O_WRONLY | O_NONBLOCK : O_WRONLY);
    if (out < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, dev, strerror(errno));
        return 3;
    }
    int v = afmt;
    if (ioctl(out, SNDCTL_DSP_SETFMT, &v) < 0 || v != afmt) {
        fprintf(stderr, "%s: %s: cannot set the sample format\n", prog, dev);
        return 3;
    }
    v = channels;
    if (ioctl(out, SNDCTL_DSP_CHANNELS, &v) < 0 || v != channels) {
        fprintf(stderr, "%s: %s: cannot play %u channels\n", prog, dev, channels);
        return 3;
    }
    v = rate;
    if (ioctl(out, SNDCTL_DSP_SPEED, &v) < 0) {
        fprintf(stderr, "%s: %s: cannot set %u Hz: %s\n", prog, dev, rate, strerror(errno));
        return 3;
    }
    if ((uint32_t)v != rate)
        fprintf(stderr, "%s: warning: %u Hz asked, the device plays %d Hz\n", prog, rate, v);
    unsigned frame = channels * (bits / 8);
    fprintf(stderr, "%s: %s: %u Hz, %u-bit, %u channel(s), %llu bytes (%.2f s)\n", prog, file,
            rate, bits, channels, (unsigned long long)data_len,
            (double)data_len / frame / rate);
    if (lseek(fd, data_off, SEEK_SET) < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
        return 1;
    }
    static char buf[32768];
    uint64_t left = data_len - data_len % frame;
    while (left > 0) {
        size_t n = left < sizeof buf ? left : sizeof buf;
        ssize_t r = read(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "%s: %s: read: %s\n", prog, file, r ? strerror(errno) : "end of file");
            return 1;
        }
        for (ssize_t off = 0; off < r;) {
            if (timing.on && timing.t0 < 0)
                timing.t0 = now_ms();
            ssize_t w = write(out, buf + off, r - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN && timing.on) {
                /* The ring is full: wait for room, looking at the delay each millisecond
                 * until the first sample has been played. */
                struct pollfd p = {.fd = out, .events = POLLOUT};
                poll(&p, 1, timing.first < 0 ? 1 : -1);
                check_first(out);
                continue;
            }
            if (w < 0) {
                fprintf(stderr, "%s: %s: write: %s\n", prog, dev, strerror(errno));
                return 3;
            }
            off += w;
            timing.written += w;
            check_first(out);
        }
        left -= r;
    }
    /* All written and not seen playing yet: look for half a second more (a file shorter
     * than what the device holds before it starts only starts with SYNC). */
    for (double end = now_ms() + 500; timing.on && timing.first < 0 && now_ms() < end;) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, 0);
        check_first(out);
    }
    if (timing.on) {
        if (timing.first >= 0)
            fprintf(stderr, "%s: first sample played %.1f ms after the first write\n", prog,
                    timing.first);
        else
            fprintf(stderr, "%s: the device had not started 0.5 s after the last write (it "
                            "starts when half its buffer is full, or on SYNC)\n", prog);
    }
    if (ioctl(out, SNDCTL_DSP_SYNC, 0) < 0) {
        fprintf(stderr, "%s: %s: sync: %s\n", prog, dev, strerror(errno));
        return 3;
    }
    close(out);
    return 0;
}
