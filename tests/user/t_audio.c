/* t_audio: OSS audio checks and test signals for tests/tests/s14_audio.rs.
 *
 *   t_audio tone RATE CHANNELS BITS MS FL FR   cosines at FL Hz (left/mono) and FR Hz
 *                                              (right), amplitude 1/2, to /dev/dsp in
 *                                              4093-byte writes, then SNDCTL_DSP_SYNC
 *   t_audio ulaw MS F                          a cosine as 8 kHz µ-law to /dev/audio, no
 *                                              ioctls (its defaults)
 *   t_audio wav FILE RATE CHANNELS BITS MS FL FR [long|zeroch|zerohz|nonpcm]
 *                                              the same signal as a WAV file (a LIST chunk,
 *                                              then data, then fmt), or with a lying header
 *   t_audio mixer VOLUME                       SOUND_MIXER_WRITE_VOLUME, both sides
 *   t_audio ioctls [MAXRATE]                   the ioctl checks (PASS/FAIL lines); MAXRATE:
 *                                              the highest rate the stack offers (96000,
 *                                              QEMU's codec; NetBSD's audio layer converts
 *                                              up to 192000)
 *   t_audio stall MS                           with audio.fault=stall:N (N < MS): a tone of
 *                                              MS ms (1000/1500 Hz, 44.1 kHz 16-bit stereo)
 *                                              whose DMA stops under it; prints the
 *                                              errno and how long the writer waited
 *
 * The signal: sample n of channel c is round(A * cos(2π f_c n / RATE)), A = 16384 for
 * 16-bit, 64 (around 128) for 8-bit: the host test computes the same. */
#include "check.h"

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>

#define SNDCTL_DSP_RESET 0x5000
#define SNDCTL_DSP_SYNC 0x5001
#define SNDCTL_DSP_SPEED 0xc0045002
#define SNDCTL_DSP_STEREO 0xc0045003
#define SNDCTL_DSP_GETBLKSIZE 0xc0045004
#define SNDCTL_DSP_SETFMT 0xc0045005
#define SNDCTL_DSP_CHANNELS 0xc0045006
#define SNDCTL_DSP_GETFMTS 0x8004500b
#define SNDCTL_DSP_GETOSPACE 0x8010500c
#define SNDCTL_DSP_GETODELAY 0x80045017
#define SOUND_PCM_READ_RATE 0x80045002
#define AFMT_QUERY 0
#define AFMT_MU_LAW 0x01
#define AFMT_U8 0x08
#define AFMT_S16_LE 0x10
#define AFMT_AC3 0x400
#define SOUND_MIXER_READ_VOLUME 0x80044d00
#define SOUND_MIXER_READ_DEVMASK 0x80044dfe
#define SOUND_MIXER_WRITE_VOLUME 0xc0044d00
#define SOUND_MIXER_WRITE_TREBLE 0xc0044d02

static unsigned char *signal_bytes(int rate, int ch, int bits, int ms, double fl, double fr,
                                   size_t *len) {
    size_t frames = (size_t)rate * ms / 1000;
    size_t bps = bits / 8;
    unsigned char *b = malloc(frames * ch * bps);
    for (size_t n = 0; n < frames; n++)
        for (int c = 0; c < ch; c++) {
            double f = c == 0 ? fl : fr;
            double x = cos(2 * M_PI * f * (double)n / rate);
            unsigned char *p = b + (n * ch + c) * bps;
            if (bits == 8) {
                *p = (unsigned char)(128 + lrint(64 * x));
            } else {
                int16_t s = (int16_t)lrint(16384 * x);
                p[0] = s & 0xff;
                p[1] = (s >> 8) & 0xff;
            }
        }
    *len = frames * ch * bps;
    return b;
}

/* Writes in `chunk`-byte pieces: an odd size splits frames across writes (the kernel keeps
 * the partial frame), which the captured signal then proves harmless. */
static int write_all(int fd, const unsigned char *b, size_t len, size_t chunk) {
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, b + off, len - off > chunk ? chunk : len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        off += w;
    }
    return 0;
}

static int s16_to_ulaw(int s) {
    int sign = 0;
    if (s < 0) {
        s = -s;
        sign = 0x80;
    }
    if (s > 32635)
        s = 32635;
    s += 0x84;
    int exp = 7;
    for (int mask = 0x4000; exp > 0 && !(s & mask); mask >>= 1)
        exp--;
    int mant = (s >> (exp + 3)) & 0x0f;
    return ~(sign | (exp << 4) | mant) & 0xff;
}

static int tone(int rate, int ch, int bits, int ms, double fl, double fr) {
    int fd = open("/dev/dsp", O_WRONLY);
    if (fd < 0) {
        perror("t_audio: /dev/dsp");
        return 1;
    }
    int v = bits == 8 ? AFMT_U8 : AFMT_S16_LE;
    int want = v;
    if (ioctl(fd, SNDCTL_DSP_SETFMT, &v) < 0 || v != want) {
        printf("tone: SETFMT answered %d\n", v);
        return 1;
    }
    v = ch;
    if (ioctl(fd, SNDCTL_DSP_CHANNELS, &v) < 0 || v != ch) {
        printf("tone: CHANNELS answered %d\n", v);
        return 1;
    }
    v = rate;
    if (ioctl(fd, SNDCTL_DSP_SPEED, &v) < 0 || v != rate) {
        printf("tone: SPEED answered %d\n", v);
        return 1;
    }
    size_t len;
    unsigned char *b = signal_bytes(rate, ch, bits, ms, fl, fr, &len);
    if (write_all(fd, b, len, 4093) < 0) {
        printf("tone: write: %s\n", strerror(errno));
        return 1;
    }
    if (ioctl(fd, SNDCTL_DSP_SYNC, 0) < 0) {
        printf("tone: SYNC: %s\n", strerror(errno));
        return 1;
    }
    close(fd);
    printf("tone: %zu bytes at %d Hz, %d ch, %d bit\n", len, rate, ch, bits);
    return 0;
}

static int ulaw(int ms, double f) {
    int fd = open("/dev/audio", O_WRONLY);
    if (fd < 0) {
        perror("t_audio: /dev/audio");
        return 1;
    }
    size_t n = 8000 * ms / 1000;
    unsigned char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = s16_to_ulaw((int)lrint(16384 * cos(2 * M_PI * f * (double)i / 8000)));
    if (write_all(fd, b, n, 65536) < 0) {
        printf("ulaw: write: %s\n", strerror(errno));
        return 1;
    }
    close(fd); /* close drains */
    printf("ulaw: %zu bytes\n", n);
    return 0;
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = v >> (8 * i);
}
static void put16(unsigned char *p, uint16_t v) {
    p[0] = v;
    p[1] = v >> 8;
}

static int wav(const char *file, int rate, int ch, int bits, int ms, double fl, double fr,
               const char *lie) {
    size_t len;
    unsigned char *b = signal_bytes(rate, ch, bits, ms, fl, fr, &len);
    unsigned char fmt[8 + 16], list[8 + 6] = "LIST", data[8] = "data", riff[12] = "RIFF";
    memcpy(fmt, "fmt ", 4);
    put32(fmt + 4, 16);
    put16(fmt + 8, 1);
    put16(fmt + 10, ch);
    put32(fmt + 12, rate);
    put32(fmt + 16, rate * ch * bits / 8);
    put16(fmt + 20, ch * bits / 8);
    put16(fmt + 22, bits);
    put32(list + 4, 5); /* odd: padded to 6 */
    memcpy(list + 8, "INFO!", 6);
    put32(data + 4, len);
    if (lie && !strcmp(lie, "long"))
        put32(data + 4, len * 10 + 12345);
    if (lie && !strcmp(lie, "zeroch"))
        put16(fmt + 10, 0);
    if (lie && !strcmp(lie, "zerohz"))
        put32(fmt + 12, 0);
    if (lie && !strcmp(lie, "nonpcm"))
        put16(fmt + 8, 3); /* IEEE float */
    memcpy(riff + 8, "WAVE", 4);
    put32(riff + 4, 4 + sizeof fmt + sizeof list + sizeof data + len);
    FILE *f = fopen(file, "wb");
    if (!f) {
        perror(file);
        return 1;
    }
    fwrite(riff, 1, 12, f);
    if (lie) { /* fmt before data, so a lying data size cannot hide it */
        fwrite(fmt, 1, sizeof fmt, f);
        fwrite(data, 1, 8, f);
        fwrite(b, 1, len, f);
    } else { /* any order: LIST, data, fmt */
        fwrite(list, 1, sizeof list, f);
        fwrite(data, 1, 8, f);
        fwrite(b, 1, len, f);
        if (len & 1)
            fputc(0, f);
        fwrite(fmt, 1, sizeof fmt, f);
    }
    fclose(f);
    printf("wav: %s: %zu data bytes\n", file, len);
    return 0;
}

static int mixer(int vol) {
    int fd = open("/dev/mixer", O_RDWR);
    int v = vol | vol << 8;
    if (fd < 0 || ioctl(fd, SOUND_MIXER_WRITE_VOLUME, &v) < 0) {
        perror("t_audio: mixer");
        return 1;
    }
    printf("mixer: volume %d\n", v & 0xff);
    return 0;
}

static void on_alarm(int sig) {
    (void)sig;
}

static int speed(int fd, int want) {
    int v = want;
    if (ioctl(fd, SNDCTL_DSP_SPEED, &v) < 0)
        return -errno;
    return v;
}

static int ioctls(int maxrate) {
    check_init("audio");
    int fd = open("/dev/dsp", O_WRONLY);
    CHECK("open_dsp", fd >= 0);
    CHECK("second_open_is_ebusy", open("/dev/dsp", O_WRONLY) < 0 && errno == EBUSY);
    CHECK("read_only_open_is_einval", open("/dev/audio", O_RDONLY) < 0 && errno == EINVAL);
    int v = 0;
    CHECK("default_rate_8000", ioctl(fd, SOUND_PCM_READ_RATE, &v) == 0 && v == 8000);
    v = AFMT_QUERY;
    CHECK("default_format_u8", ioctl(fd, SNDCTL_DSP_SETFMT, &v) == 0 && v == AFMT_U8);
    v = 0;
    CHECK("getfmts", ioctl(fd, SNDCTL_DSP_GETFMTS, &v) == 0 &&
                         (v & (AFMT_U8 | AFMT_S16_LE | AFMT_MU_LAW)) ==
                             (AFMT_U8 | AFMT_S16_LE | AFMT_MU_LAW));
    CHECK("speed_44100", speed(fd, 44100) == 44100);
    CHECK("speed_48000", speed(fd, 48000) == 48000);
    CHECK("speed_8000_by_upsampling", speed(fd, 8000) == 8000);
    CHECK("speed_11025_by_upsampling", speed(fd, 11025) == 11025);
    CHECK("speed_44000_nearest_44100", speed(fd, 44000) == 44100);
    CHECK("speed_1_nearest_8000", speed(fd, 1) == 8000);
    v = speed(fd, 1000000);
    CHECKF("speed_1000000_nearest_max", v == maxrate, "answered %d, the device's highest is %d",
           v, maxrate);
    CHECK("speed_0_einval", speed(fd, 0) == -EINVAL);
    CHECK("speed_negative_einval", speed(fd, -44100) == -EINVAL);
    v = AFMT_AC3;
    CHECK("setfmt_ac3_nearest_s16", ioctl(fd, SNDCTL_DSP_SETFMT, &v) == 0 && v == AFMT_S16_LE);
    v = AFMT_U8 | AFMT_S16_LE;
    CHECK("setfmt_two_bits_nearest_s16",
          ioctl(fd, SNDCTL_DSP_SETFMT, &v) == 0 && v == AFMT_S16_LE);
    v = 6;
    CHECK("channels_6_nearest_2", ioctl(fd, SNDCTL_DSP_CHANNELS, &v) == 0 && v == 2);
    v = 0;
    CHECK("channels_0_nearest_1", ioctl(fd, SNDCTL_DSP_CHANNELS, &v) == 0 && v == 1);
    v = -3;
    CHECK("channels_negative_einval", ioctl(fd, SNDCTL_DSP_CHANNELS, &v) < 0 && errno == EINVAL);
    v = 1;
    CHECK("stereo_1", ioctl(fd, SNDCTL_DSP_STEREO, &v) == 0 && v == 1);
    CHECK("unknown_ioctl_einval", ioctl(fd, 0x5099, &v) < 0 && errno == EINVAL);
    CHECK("bad_pointer_efault", ioctl(fd, SNDCTL_DSP_SPEED, (void *)8) < 0 && errno == EFAULT);
    int blk = 0;
    CHECK("getblksize", ioctl(fd, SNDCTL_DSP_GETBLKSIZE, &blk) == 0 && blk > 0);
    int info[4] = {0};
    CHECK("getospace_empty",
          ioctl(fd, SNDCTL_DSP_GETOSPACE, info) == 0 && info[1] >= 2 && info[2] == blk &&
              info[3] >= info[0] * info[2] && info[0] == info[1]);
    close(fd);

    /* Non-blocking: fill the ring with silence until EAGAIN; then poll waits for room. */
    fd = open("/dev/dsp", O_WRONLY | O_NONBLOCK);
    CHECK("open_nonblock", fd >= 0);
    v = AFMT_S16_LE;
    ioctl(fd, SNDCTL_DSP_SETFMT, &v);
    v = 2;
    ioctl(fd, SNDCTL_DSP_CHANNELS, &v);
    speed(fd, 44100);
    static unsigned char zeros[16384];
    ssize_t w = 0;
    long total = 0;
    int full_not_writable = 0, werr = 0;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    /* Full, then at once not writable: the ring drains meanwhile, so try a few times. */
    for (int tries = 0; tries < 5 && !full_not_writable; tries++) {
        int rounds = 0;
        while ((w = write(fd, zeros, sizeof zeros)) > 0 && rounds++ < 1000)
            total += w;
        werr = w < 0 ? errno : 0;
        full_not_writable = werr == EAGAIN && poll(&p, 1, 0) == 0;
    }
    CHECK("nonblocking_write_eagain_when_full", werr == EAGAIN && total > 0);
    CHECK("poll_not_writable_when_full", full_not_writable);
    int delay = 0;
    CHECK("getodelay_counts_queued",
          ioctl(fd, SNDCTL_DSP_GETODELAY, &delay) == 0 && delay > 0 && delay <= total);
    CHECK("poll_writable_once_played", poll(&p, 1, 5000) == 1 && (p.revents & POLLOUT));
    CHECK("reset", ioctl(fd, SNDCTL_DSP_RESET, 0) == 0);
    CHECK("getodelay_zero_after_reset",
          ioctl(fd, SNDCTL_DSP_GETODELAY, &delay) == 0 && delay == 0);
    close(fd);

    /* A blocked write (10 s of silence into a ~0.3 s ring) interrupted by a signal without
     * SA_RESTART returns what it wrote; close then drains only what was queued. */
    fd = open("/dev/dsp", O_WRONLY);
    v = AFMT_S16_LE;
    ioctl(fd, SNDCTL_DSP_SETFMT, &v);
    v = 2;
    ioctl(fd, SNDCTL_DSP_CHANNELS, &v);
    speed(fd, 44100);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, 0);
    size_t big = 44100 * 4 * 10;
    unsigned char *silence = calloc(1, big);
    alarm(1);
    w = write(fd, silence, big);
    int e = errno;
    alarm(0);
    CHECKF("signal_ends_a_blocked_write_with_a_partial_count", w > 0 && (size_t)w < big,
           "write returned %zd (errno %d)", w, w < 0 ? e : 0);
    close(fd);
    free(silence);

    int m = open("/dev/mixer", O_RDWR);
    CHECK("open_mixer", m >= 0);
    v = 0;
    CHECK("devmask_volume_pcm",
          ioctl(m, SOUND_MIXER_READ_DEVMASK, &v) == 0 && (v & 0x11) == 0x11);
    v = 150 | 120 << 8;
    CHECK("volume_150_clamped_100", ioctl(m, SOUND_MIXER_WRITE_VOLUME, &v) == 0 &&
                                        v == (100 | 100 << 8));
    v = 30 | 70 << 8;
    ioctl(m, SOUND_MIXER_WRITE_VOLUME, &v);
    v = 0;
    CHECK("volume_reads_back", ioctl(m, SOUND_MIXER_READ_VOLUME, &v) == 0 && v == (30 | 70 << 8));
    v = 100 | 100 << 8;
    ioctl(m, SOUND_MIXER_WRITE_VOLUME, &v);
    CHECK("treble_einval", ioctl(m, SOUND_MIXER_WRITE_TREBLE, &v) < 0 && errno == EINVAL);
    close(m);
    return check_done();
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* For a kernel booted with audio.fault=stall:MS: plays a tone of `ms` (longer than MS) at
 * 44.1 kHz 16-bit stereo; the controller's DMA stops under it, and a write must then fail
 * with EIO within seconds (the stall detector), and close must not hang either. */
static int stall(int ms) {
    int fd = open("/dev/dsp", O_WRONLY);
    if (fd < 0) {
        perror("t_audio: /dev/dsp");
        return 1;
    }
    int v = AFMT_S16_LE;
    ioctl(fd, SNDCTL_DSP_SETFMT, &v);
    v = 2;
    ioctl(fd, SNDCTL_DSP_CHANNELS, &v);
    v = 44100;
    ioctl(fd, SNDCTL_DSP_SPEED, &v);
    size_t len;
    unsigned char *b = signal_bytes(44100, 2, 16, ms, 1000, 1500, &len);
    size_t off = 0;
    int err = 0;
    double last = now_ms();
    while (off < len) {
        ssize_t w = write(fd, b + off, len - off > 4096 ? 4096 : len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            err = errno;
            break;
        }
        off += w;
        last = now_ms();
    }
    double waited = now_ms() - last;
    double t0 = now_ms();
    close(fd);
    double closed = now_ms() - t0;
    printf("stall: errno=%d after %zu of %zu bytes, waited_ms=%.0f after the last write that "
           "went through, close_ms=%.0f\n",
           err, off, len, waited, closed);
    return err == EIO ? 0 : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc == 8 && !strcmp(argv[1], "tone"))
        return tone(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atof(argv[6]),
                    atof(argv[7]));
    if (argc == 4 && !strcmp(argv[1], "ulaw"))
        return ulaw(atoi(argv[2]), atof(argv[3]));
    if ((argc == 9 || argc == 10) && !strcmp(argv[1], "wav"))
        return wav(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
                   atof(argv[7]), atof(argv[8]), argc == 10 ? argv[9] : 0);
    if (argc == 3 && !strcmp(argv[1], "mixer"))
        return mixer(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "stall"))
        return stall(atoi(argv[2]));
    if ((argc == 2 || argc == 3) && !strcmp(argv[1], "ioctls"))
        return ioctls(argc == 3 ? atoi(argv[2]) : 96000);
    fprintf(stderr, "usage: see the comment at the top of t_audio.c\n");
    return 1;
}
