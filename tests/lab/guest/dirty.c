/* Rewrites RATE MiB of guest memory per second, spread over a SIZE MiB buffer, and checks it as it goes.
 * Lets the lab make a guest whose memory changes faster than a migration can copy it, and see whether a
 * migration lost any of its writes (as QEMU's own migration test guest does): each sweep over the buffer
 * writes the sweep's number into the first byte of every page, after checking that the page still holds
 * the previous sweep's number. A page that arrived in an old state breaks that; the guest then prints
 * "LAB-GUEST-CORRUPTION ..." on its console, and its HTTP file /memcheck says "corrupt ..." (else "ok ..."). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096L

static void status(const char *text)
{
    FILE *f = fopen("/www/memcheck.tmp", "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    rename("/www/memcheck.tmp", "/www/memcheck");
}

int main(int argc, char **argv)
{
    long rate_mib = argc > 1 ? atol(argv[1]) : 0;
    long size_mib = argc > 2 ? atol(argv[2]) : 64;
    if (rate_mib <= 0 || size_mib <= 0)
        return 0;
    long pages = size_mib * 1024 * 1024 / PAGE;
    unsigned char *buf = malloc((size_t)pages * PAGE);
    if (!buf)
        return 1;
    memset(buf, 0, (size_t)pages * PAGE);
    /* 100 ticks per second, each dirtying its share of pages. */
    long per_tick = rate_mib * 1024 * 1024 / PAGE / 100;
    if (per_tick < 1)
        per_tick = 1;
    long next = 0, sweeps = 0, errors = 0;
    unsigned char value = 1;
    char line[200];
    struct timespec tick = {0, 10 * 1000 * 1000};
    status("ok sweeps=0 errors=0\n");
    for (;;) {
        for (long i = 0; i < per_tick; i++) {
            unsigned char expected = (unsigned char)(value - 1);
            unsigned char found = buf[next * PAGE];
            if (found != expected) {
                if (errors < 20) {
                    printf("LAB-GUEST-CORRUPTION page %ld of %ld: expected %u, found %u (sweep %ld)\n", next, pages,
                           expected, found, sweeps);
                    fflush(stdout);
                }
                errors++;
            }
            buf[next * PAGE] = value;
            if (++next == pages) {
                next = 0;
                value++;
                sweeps++;
                snprintf(line, sizeof(line), "%s sweeps=%ld errors=%ld\n", errors ? "corrupt" : "ok", sweeps, errors);
                status(line);
            }
        }
        nanosleep(&tick, NULL);
    }
}
