/* Rewrites RATE MiB of guest memory per second, spread over a SIZE MiB buffer.
 * Lets the lab make a guest whose memory changes faster than a migration can copy it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096L

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
    memset(buf, 1, (size_t)pages * PAGE);
    /* 100 ticks per second, each dirtying its share of pages. */
    long per_tick = rate_mib * 1024 * 1024 / PAGE / 100;
    if (per_tick < 1)
        per_tick = 1;
    long next = 0;
    unsigned char value = 0;
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (;;) {
        for (long i = 0; i < per_tick; i++) {
            buf[next * PAGE] = value;
            if (++next == pages) {
                next = 0;
                value++;
            }
        }
        nanosleep(&tick, NULL);
    }
}
