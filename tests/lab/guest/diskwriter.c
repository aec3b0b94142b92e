/* Writes numbered records to the guest's disk and checks them: the disk analogue of dirty.c. Lets the lab prove
 * that a live storage migration (virsh blockcopy and pivot, or a migration with storage copy) loses no write the
 * guest saw acknowledged.
 *
 *   diskwriter write DEV RATE   boot scan of DEV (result in WWW/diskscan), then RATE records per second, forever
 *                               (RATE 0: the scan only); the last acknowledged record in WWW/diskcheck
 *   diskwriter verify DEV       reads WWW/diskcheck first, then scans DEV: prints one line, exit 0 when ok
 *
 * WWW is /www (the guest's HTTP root), or $DISKWRITER_WWW. Layout of DEV (4096-byte blocks, O_DIRECT):
 *   offset 0: a header block, written once on a fresh disk: magic "LABDWHDR", the writer id (random), the ring's
 *             number of slots, a checksum. It keeps the writer id across boots.
 *   offset REGION_START + s * 4096, s = 0 .. slots-1: record k (k = 1, 2, ...) lives in slot (k-1) % slots.
 *             slots = 65536 (256 MiB), fewer on a smaller device or with $DISKWRITER_SLOTS at the header's creation.
 * A record: magic "LABDWREC", k, writer id, slots, the time of writing, a checksum (FNV-1a over the record's 64-bit
 * words, the checksum's own word taken as 0), and the rest filled with a pattern derived from (writer, k): a torn
 * block (sectors of two records), a stale block (the previous lap's record) or a block of another place all fail.
 * A write is acknowledged when pwrite (O_DIRECT|O_DSYNC) returns the full 4096 bytes.
 *
 * Lines (one each, the first word says it all):
 *   WWW/diskcheck  ok acked=K writer=ID rate=R               (K: the last acknowledged record; never more;
 *                                                             right after the boot scan, the M it found)
 *                  error acked=K errno=E writer=ID rate=R     (the last write failed; retried at the rate)
 *   WWW/diskscan   ok last=M writer=ID                        (records max(1,M-slots+1)..M all present and valid)
 *                  empty writer=ID                            (a fresh disk: no record of this writer)
 *                  corrupt first_bad=K reason=R last=M writer=ID
 *   verify         ok verified=L..N acked=K writer=ID ms=T
 *                  empty acked=0 writer=ID ms=T
 *                  missing first_missing=K reason=R acked=K last=N writer=ID ms=T   (a record is absent or stale)
 *                  corrupt first_bad=K reason=R acked=K last=N writer=ID ms=T       (a record is damaged)
 *                  error ... (the device or its header cannot be read)
 * M and N are the highest valid record found. The boot scan wants every record of the ring's window ending at M
 * (max(1, M-slots+1) .. M); verify wants every record of the window ending at max(N, acked): a record at or below
 * the acknowledged number read before the scan that is not on the disk is a lost write even when nothing after it
 * survived either. Verify runs beside the writer: a failing slot is read again (up to 3 times, 20 ms apart) before
 * it counts, and a slot that already holds the next lap's record counts as its older record having been there.
 * Reasons: absent (zeroed block), garbage (not a record), checksum, foreign (another writer's), slots, wrongslot
 * (a record in another record's place), pattern, stale (an older record where a newer one belongs); with
 * first_bad=0: header (the header block is damaged, or gone while the region still holds blocks), open, read;
 * verify on a blank disk (no header, nothing in the region) after records were acknowledged: missing
 * first_missing=1 reason=no-header.
 * After a boot scan that found no usable header the writer does not write: the evidence stays as it is.
 * The writer continues from M+1 after a boot scan, so acknowledged numbers grow across restarts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define WORDS (BLOCK / 8)
#define REGION_START (1024L * 1024)
#define MAX_SLOTS 65536L
#define MIN_SLOTS 16L
#define CHUNK_SLOTS 256L /* 1 MiB per read */
#define HDR_MAGIC 0x524448574442414cULL /* "LABDWHDR" on the disk (little-endian) */
#define REC_MAGIC 0x434552574442414cULL /* "LABDWREC" */
#define W_MAGIC 0
#define W_K 1
#define W_WRITER 2
#define W_SLOTS 3
#define W_TIME 4
#define W_SUM 5
#define W_FIRST_PATTERN 6

enum { REC_OK = 0, REC_ABSENT, REC_GARBAGE, REC_CHECKSUM, REC_FOREIGN, REC_SLOTS, REC_WRONGSLOT, REC_PATTERN, REC_STALE };
static const char *REASONS[] = {"ok", "absent", "garbage", "checksum", "foreign", "slots", "wrongslot", "pattern", "stale"};

static const char *www = "/www";
static uint64_t writer_id;
static long slots;

static uint64_t fnv(const uint64_t *w)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < WORDS; i++) {
        h ^= i == W_SUM ? 0 : w[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t pattern_seed(uint64_t k)
{
    return mix(writer_id ^ (k * 0xd6e8feb86659fd93ULL));
}

static off_t slot_offset(long s)
{
    return REGION_START + (off_t)s * BLOCK;
}

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void build_record(uint64_t *w, uint64_t k)
{
    w[W_MAGIC] = REC_MAGIC;
    w[W_K] = k;
    w[W_WRITER] = writer_id;
    w[W_SLOTS] = (uint64_t)slots;
    w[W_TIME] = now_ns(CLOCK_REALTIME);
    uint64_t seed = pattern_seed(k);
    for (int i = W_FIRST_PATTERN; i < WORDS; i++)
        w[i] = seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    w[W_SUM] = fnv(w);
}

/* What slot s holds: REC_OK and *k, or the reason it holds no record of this writer. */
static int parse_record(const uint64_t *w, long s, uint64_t *k)
{
    *k = 0;
    if (w[W_MAGIC] == 0)
        return REC_ABSENT;
    if (w[W_MAGIC] != REC_MAGIC)
        return REC_GARBAGE;
    if (w[W_SUM] != fnv(w))
        return REC_CHECKSUM;
    if (w[W_WRITER] != writer_id)
        return REC_FOREIGN;
    if (w[W_SLOTS] != (uint64_t)slots)
        return REC_SLOTS;
    if (w[W_K] == 0 || (long)((w[W_K] - 1) % (uint64_t)slots) != s)
        return REC_WRONGSLOT;
    uint64_t seed = pattern_seed(w[W_K]);
    for (int i = W_FIRST_PATTERN; i < WORDS; i++)
        if (w[i] != seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL)
            return REC_PATTERN;
    *k = w[W_K];
    return REC_OK;
}

static void put_file(const char *name, const char *text)
{
    char path[512], tmp[520];
    snprintf(path, sizeof(path), "%s/%s", www, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fputs(text, f);
    if (fclose(f) == 0)
        rename(tmp, path);
}

static int open_device(const char *dev, int flags, long long *size)
{
    int fd = open(dev, flags | O_DIRECT);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    unsigned long long bytes = (unsigned long long)st.st_size;
    if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
        close(fd);
        return -1;
    }
    *size = (long long)bytes;
    return fd;
}

static int read_full(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                memset((char *)buf + done, 0, len - done); /* a file shorter than its region: unwritten */
            return n == 0 ? 0 : -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const void *buf, off_t off)
{
    ssize_t n;
    do
        n = pwrite(fd, buf, BLOCK, off);
    while (n < 0 && errno == EINTR);
    if (n == BLOCK)
        return 0;
    if (n >= 0)
        errno = EIO; /* a short write is no acknowledgement */
    return -1;
}

/* The header: 0 and writer_id/slots set when valid, 1 when the block is empty (a fresh disk), -1 when damaged. */
static int read_header(int fd, uint64_t *buf)
{
    if (read_full(fd, buf, BLOCK, 0) != 0)
        return -2;
    if (buf[W_MAGIC] == 0)
        return 1;
    if (buf[W_MAGIC] != HDR_MAGIC || buf[W_SUM] != fnv(buf) || buf[W_SLOTS] < MIN_SLOTS || buf[W_SLOTS] > MAX_SLOTS)
        return -1;
    writer_id = buf[W_WRITER];
    slots = (long)buf[W_SLOTS];
    return 0;
}

static uint64_t new_writer_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id)) {
        /* early boot without entropy yet: the boot id, the clocks and the pid are random enough for an id */
        char boot[64] = "";
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
        if (f) {
            if (!fgets(boot, sizeof(boot), f))
                boot[0] = 0;
            fclose(f);
        }
        id = now_ns(CLOCK_REALTIME) ^ (now_ns(CLOCK_MONOTONIC) << 17) ^ (uint64_t)getpid();
        for (char *p = boot; *p; p++)
            id = mix(id ^ (uint64_t)(unsigned char)*p);
    }
    id = mix(id);
    return id ? id : 1;
}

struct scan {
    int64_t *slot;     /* per slot: k > 0, or -reason */
    uint64_t last;     /* the highest valid record */
    uint64_t first;    /* the window's lowest record that must be there */
    uint64_t bad;      /* the first record of the window that is not (0: none) */
    int reason;
};

static void *aligned(size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, BLOCK, len) != 0)
        return NULL;
    return p;
}

static int scan_region(int fd, struct scan *sc)
{
    uint64_t *buf = aligned(CHUNK_SLOTS * BLOCK);
    if (!buf)
        return -1;
    sc->last = 0;
    for (long s = 0; s < slots; s += CHUNK_SLOTS) {
        long n = slots - s < CHUNK_SLOTS ? slots - s : CHUNK_SLOTS;
        if (read_full(fd, buf, (size_t)n * BLOCK, slot_offset(s)) != 0) {
            free(buf);
            return -1;
        }
        for (long i = 0; i < n; i++) {
            uint64_t k;
            int r = parse_record(buf + i * WORDS, s + i, &k);
            sc->slot[s + i] = r == REC_OK ? (int64_t)k : -r;
            if (r == REC_OK && k > sc->last)
                sc->last = k;
        }
    }
    free(buf);
    return 0;
}

/* Why record k is not in its slot (REC_OK: it is, or a newer record of the same slot is: a later lap). */
static int check_record(const struct scan *sc, uint64_t k)
{
    int64_t v = sc->slot[(k - 1) % (uint64_t)slots];
    if (v < 0)
        return (int)-v;
    return (uint64_t)v >= k ? REC_OK : REC_STALE;
}

/* The first record of the window ending at upto that fails, from the scan as it is. */
static void judge(struct scan *sc, uint64_t upto)
{
    sc->first = upto >= (uint64_t)slots ? upto - (uint64_t)slots + 1 : 1;
    sc->bad = 0;
    sc->reason = REC_OK;
    for (uint64_t k = sc->first; k <= upto; k++) {
        int r = check_record(sc, k);
        if (r != REC_OK) {
            sc->bad = k;
            sc->reason = r;
            return;
        }
    }
}

/* Reads a failing slot again (a verify runs beside the writer: a block read while it was being written, or a
 * record written just after the scan passed its slot and before it read a later one): the judgement stands only
 * when the block still fails after a few reads. */
static int recheck(int fd, struct scan *sc, uint64_t upto, int *budget)
{
    uint64_t *buf = aligned(BLOCK);
    if (!buf)
        return -1;
    judge(sc, upto);
    while (sc->bad && *budget > 0) {
        uint64_t bad = sc->bad;
        long s = (long)((bad - 1) % (uint64_t)slots);
        int fixed = 0;
        for (int attempt = 0; attempt < 3 && *budget > 0 && !fixed; attempt++, (*budget)--) {
            if (attempt) {
                struct timespec pause = {0, 20 * 1000 * 1000};
                nanosleep(&pause, NULL);
            }
            if (read_full(fd, buf, BLOCK, slot_offset(s)) != 0) {
                free(buf);
                return -1;
            }
            uint64_t k;
            int r = parse_record(buf, s, &k);
            sc->slot[s] = r == REC_OK ? (int64_t)k : -r;
            fixed = check_record(sc, bad) == REC_OK;
        }
        if (!fixed)
            break;
        judge(sc, upto);
    }
    free(buf);
    return 0;
}

static int prepare(int fd, long long size, uint64_t *hdr, int create, const char **why)
{
    int h = read_header(fd, hdr);
    if (h == -2) {
        *why = "read-header";
        return -1;
    }
    if (h == 0)
        return 0;
    if (h == -1) {
        *why = "header";
        return -1;
    }
    /* no header: a fresh disk (then a new writer, a ring that fits the device), unless the region holds blocks */
    long fit = (long)((size - REGION_START) / BLOCK);
    long want = MAX_SLOTS;
    const char *env = getenv("DISKWRITER_SLOTS");
    if (env && atol(env) > 0)
        want = atol(env);
    slots = want < fit ? want : fit;
    if (slots < MIN_SLOTS) {
        *why = "device-too-small";
        return -1;
    }
    /* a disk whose header went but whose region holds blocks is not fresh: its evidence stays untouched */
    uint64_t *chunk = aligned(CHUNK_SLOTS * BLOCK);
    if (!chunk) {
        *why = "memory";
        return -1;
    }
    for (long s = 0; s < slots; s += CHUNK_SLOTS) {
        long n = slots - s < CHUNK_SLOTS ? slots - s : CHUNK_SLOTS;
        if (read_full(fd, chunk, (size_t)n * BLOCK, slot_offset(s)) != 0) {
            free(chunk);
            *why = "read";
            return -1;
        }
        for (long i = 0; i < n; i++)
            if (chunk[i * WORDS + W_MAGIC] != 0) {
                free(chunk);
                *why = "header";
                return -1;
            }
    }
    free(chunk);
    if (!create) {
        *why = "no-header";
        return -1;
    }
    writer_id = new_writer_id();
    memset(hdr, 0, BLOCK);
    hdr[W_MAGIC] = HDR_MAGIC;
    hdr[W_WRITER] = writer_id;
    hdr[W_SLOTS] = (uint64_t)slots;
    hdr[W_TIME] = now_ns(CLOCK_REALTIME);
    hdr[W_SUM] = fnv(hdr);
    if (write_full(fd, hdr, 0) != 0) {
        *why = "write-header";
        return -1;
    }
    return 1;
}

static long ms_since(uint64_t t0)
{
    return (long)((now_ns(CLOCK_MONOTONIC) - t0) / 1000000);
}

static int cmd_verify(const char *dev)
{
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    /* what was acknowledged, FIRST: every record up to it must be on the disk */
    uint64_t acked = 0;
    char path[512], line[256] = "";
    snprintf(path, sizeof(path), "%s/diskcheck", www);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(line, sizeof(line), f)) {
            char *p = strstr(line, "acked=");
            if (p)
                acked = strtoull(p + 6, NULL, 10);
        }
        fclose(f);
    }
    long long size;
    int fd = open_device(dev, O_RDONLY, &size);
    if (fd < 0) {
        printf("error open %s errno=%d acked=%llu\n", dev, errno, (unsigned long long)acked);
        return 2;
    }
    uint64_t *hdr = aligned(BLOCK);
    const char *why = "";
    if (!hdr || prepare(fd, size, hdr, 0, &why) != 0) {
        if (strcmp(why, "no-header") == 0 && acked == 0) {
            printf("empty acked=0 writer=none ms=%ld\n", ms_since(t0));
            return 0;
        }
        if (strcmp(why, "no-header") == 0) /* a blank disk where acknowledged records should be */
            printf("missing first_missing=1 reason=%s acked=%llu last=0 writer=none ms=%ld\n", why,
                   (unsigned long long)acked, ms_since(t0));
        else
            printf("corrupt first_bad=0 reason=%s acked=0 last=0 writer=none ms=%ld\n", why, ms_since(t0));
        return 1;
    }
    struct scan sc = {0};
    sc.slot = calloc((size_t)slots, sizeof(*sc.slot));
    if (!sc.slot || scan_region(fd, &sc) != 0) {
        printf("error read %s errno=%d acked=%llu writer=%016llx\n", dev, errno, (unsigned long long)acked,
               (unsigned long long)writer_id);
        return 2;
    }
    uint64_t upto = sc.last > acked ? sc.last : acked;
    int budget = 200;
    if (recheck(fd, &sc, upto, &budget) != 0) {
        printf("error read %s errno=%d acked=%llu writer=%016llx\n", dev, errno, (unsigned long long)acked,
               (unsigned long long)writer_id);
        return 2;
    }
    close(fd);
    unsigned long long A = acked, N = sc.last, W = writer_id;
    /* a lost write: the block is empty, or still holds the record of the lap before; anything else is damage */
    if (sc.bad && (sc.reason == REC_ABSENT || sc.reason == REC_STALE)) {
        printf("missing first_missing=%llu reason=%s acked=%llu last=%llu writer=%016llx ms=%ld\n",
               (unsigned long long)sc.bad, REASONS[sc.reason], A, N, W, ms_since(t0));
        return 1;
    }
    if (sc.bad) {
        printf("corrupt first_bad=%llu reason=%s acked=%llu last=%llu writer=%016llx ms=%ld\n",
               (unsigned long long)sc.bad, REASONS[sc.reason], A, N, W, ms_since(t0));
        return 1;
    }
    if (upto == 0) {
        printf("empty acked=0 writer=%016llx ms=%ld\n", W, ms_since(t0));
        return 0;
    }
    printf("ok verified=%llu..%llu acked=%llu writer=%016llx ms=%ld\n", (unsigned long long)sc.first, N, A, W,
           ms_since(t0));
    return 0;
}

static void publish(uint64_t acked, int err, long rate)
{
    char line[200];
    if (err)
        snprintf(line, sizeof(line), "error acked=%llu errno=%d writer=%016llx rate=%ld\n", (unsigned long long)acked,
                 err, (unsigned long long)writer_id, rate);
    else
        snprintf(line, sizeof(line), "ok acked=%llu writer=%016llx rate=%ld\n", (unsigned long long)acked,
                 (unsigned long long)writer_id, rate);
    put_file("diskcheck", line);
}

static int cmd_write(const char *dev, long rate)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    long long size;
    int fd = open_device(dev, O_RDWR | O_DSYNC, &size);
    char line[300];
    if (fd < 0) {
        snprintf(line, sizeof(line), "corrupt first_bad=0 reason=open errno=%d last=0 writer=none\n", errno);
        put_file("diskscan", line);
        printf("LAB-GUEST-DISKSCAN %s", line);
        return 2;
    }
    uint64_t *buf = aligned(BLOCK);
    const char *why = "";
    int fresh = buf ? prepare(fd, size, buf, 1, &why) : -1;
    struct scan sc = {0};
    if (fresh < 0) {
        snprintf(line, sizeof(line), "corrupt first_bad=0 reason=%s last=0 writer=none\n", why);
        put_file("diskscan", line);
        printf("LAB-GUEST-DISKSCAN %s", line);
        return 1; /* no writer id to continue with: the evidence stays as it is */
    }
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    sc.slot = calloc((size_t)slots, sizeof(*sc.slot));
    if (!sc.slot || scan_region(fd, &sc) != 0) {
        snprintf(line, sizeof(line), "corrupt first_bad=0 reason=read errno=%d last=0 writer=%016llx\n", errno,
                 (unsigned long long)writer_id);
        put_file("diskscan", line);
        printf("LAB-GUEST-DISKSCAN %s", line);
        return 2;
    }
    judge(&sc, sc.last);
    if (sc.bad)
        snprintf(line, sizeof(line), "corrupt first_bad=%llu reason=%s last=%llu writer=%016llx\n",
                 (unsigned long long)sc.bad, REASONS[sc.reason], (unsigned long long)sc.last,
                 (unsigned long long)writer_id);
    else if (sc.last)
        snprintf(line, sizeof(line), "ok last=%llu writer=%016llx\n", (unsigned long long)sc.last,
                 (unsigned long long)writer_id);
    else
        snprintf(line, sizeof(line), "empty writer=%016llx\n", (unsigned long long)writer_id);
    put_file("diskscan", line);
    printf("LAB-GUEST-DISKSCAN %.*s slots=%ld scan_ms=%ld\n", (int)strcspn(line, "\n"), line, slots, ms_since(t0));
    free(sc.slot);

    uint64_t acked = sc.last, k = sc.last + 1;
    publish(acked, 0, rate);
    if (rate <= 0)
        return 0;
    uint64_t interval = 1000000000ULL / (uint64_t)rate;
    uint64_t next = now_ns(CLOCK_MONOTONIC), last_pub = next;
    int last_err = 0, pending = 0;
    long errors = 0;
    for (;;) {
        build_record(buf, k);
        if (write_full(fd, buf, slot_offset((long)((k - 1) % (uint64_t)slots))) == 0) {
            acked = k++;
            pending = 1;
            if (last_err) {
                printf("LAB-GUEST-DISKWRITE resumed at %llu after errno=%d\n", (unsigned long long)acked, last_err);
                last_err = 0;
            }
        } else {
            int err = errno;
            if (errors++ < 20 || err != last_err)
                printf("LAB-GUEST-DISKERROR record %llu: errno=%d %s\n", (unsigned long long)k, err, strerror(err));
            last_err = err;
            publish(acked, err, rate);
            last_pub = now_ns(CLOCK_MONOTONIC);
            pending = 0;
        }
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        /* published when the next chance would come more than 100 ms after the last publication */
        if (pending && now + interval >= last_pub + 100000000ULL) {
            publish(acked, 0, rate);
            last_pub = now;
            pending = 0;
        }
        next += interval;
        if (next + 1000000000ULL < now)
            next = now; /* after a stall: no burst to catch up */
        struct timespec until = {(time_t)(next / 1000000000ULL), (long)(next % 1000000000ULL)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
            ;
    }
}

int main(int argc, char **argv)
{
    const char *env = getenv("DISKWRITER_WWW");
    if (env && *env)
        www = env;
    if (argc == 4 && strcmp(argv[1], "write") == 0)
        return cmd_write(argv[2], atol(argv[3]));
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argv[2]);
    fprintf(stderr, "usage: %s write DEV RATE | verify DEV\n", argv[0]);
    return 2;
}
