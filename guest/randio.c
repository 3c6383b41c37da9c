/*
 * randio: 4 KiB random reads or writes on a block device, for guest/iobench.sh
 * (bench/compare-io.sh's random I/O figures; busybox has no such tool).
 *
 *   randio DEVICE read|write COUNT SPAN_MIB
 *
 * COUNT requests of 4096 bytes each, one at a time, with O_DIRECT (so the
 * guest's page cache is not measured), at 4 KiB-aligned offsets drawn
 * uniformly from the device's first SPAN_MIB MiB by a fixed-seed xorshift
 * (the same offsets every run, on every engine). Writes carry the request's
 * number. Prints "<count> <milliseconds>" on success; exits 1 with a message
 * on the first failed request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[2], "read") != 0 && strcmp(argv[2], "write") != 0)) {
        fprintf(stderr, "usage: randio DEVICE read|write COUNT SPAN_MIB\n");
        return 2;
    }
    int writing = strcmp(argv[2], "write") == 0;
    long count = strtol(argv[3], NULL, 10);
    long span = strtol(argv[4], NULL, 10);
    if (count <= 0 || span <= 0) {
        fprintf(stderr, "randio: COUNT and SPAN_MIB must be positive\n");
        return 2;
    }
    int fd = open(argv[1], (writing ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0) {
        fprintf(stderr, "randio: open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    void *buffer;
    if (posix_memalign(&buffer, BLOCK, BLOCK) != 0) {
        fprintf(stderr, "randio: out of memory\n");
        return 1;
    }
    memset(buffer, 0x5a, BLOCK);
    uint64_t blocks = (uint64_t)span * 1024 * 1024 / BLOCK;
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    double start = now_ms();
    for (long i = 0; i < count; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        off_t offset = (off_t)(state % blocks) * BLOCK;
        ssize_t n;
        if (writing) {
            memcpy(buffer, &i, sizeof i);
            n = pwrite(fd, buffer, BLOCK, offset);
        } else {
            n = pread(fd, buffer, BLOCK, offset);
        }
        if (n != BLOCK) {
            fprintf(stderr, "randio: %s at %lld: %s\n", argv[2], (long long)offset, n < 0 ? strerror(errno) : "short");
            return 1;
        }
    }
    double elapsed = now_ms() - start;
    printf("%ld %.0f\n", count, elapsed < 1 ? 1 : elapsed);
    return 0;
}
