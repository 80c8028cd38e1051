/*
 * The least a W1 client can do: one call in flight, a blocking loop of write, epoll_wait
 * and read, no library. Against dms-settingsd (Health/Check) or Redis (GET key), for
 * telling the server's part of a round trip from the client's (docs/PERFORMANCE.md).
 *
 *   gcc -O2 -o w1_client scripts/bench-lib/w1_client.c
 *   ./w1_client ours PORT CALLS      # dms-settingsd: preface, SETTINGS, then CALL frames
 *   ./w1_client redis PORT CALLS     # Redis: GET key
 *   W1_REARM=1 ./w1_client ...       # re-register the socket with epoll before each wait
 *
 * W1_REARM=1 does what redis-benchmark's event loop does per request (EPOLL_CTL_DEL, then
 * EPOLL_CTL_ADD): the removed entry is freed after an RCU grace period, and a CPU with an
 * RCU callback pending keeps its tick when it idles, which is cheaper to wake on a VM
 * whose cpuidle governor otherwise stops the tick at every idle (docs/PERFORMANCE.md).
 *
 * Prints latency percentiles in microseconds (the first 1,000 calls are a warm-up).
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void read_exactly(int fd, char *buffer, int count) {
  for (int got = 0; got < count;) {
    int n = read(fd, buffer + got, count - got);
    if (n <= 0) { perror("read"); exit(1); }
    got += n;
  }
}

static int by_value(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s ours|redis PORT CALLS\n", argv[0]); return 2; }
  int ours = strcmp(argv[1], "ours") == 0, port = atoi(argv[2]), calls = atoi(argv[3]);
  if (calls <= 1000) { fprintf(stderr, "CALLS must be over 1000\n"); return 2; }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
  if (connect(fd, (struct sockaddr *)&address, sizeof address)) { perror("connect"); return 1; }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char buffer[65536];
  if (ours) {
    /* Preface both ways, then the server's SETTINGS frame (length-prefixed). */
    if (write(fd, "DMSRPC\0\1", 8) != 8) { perror("write"); return 1; }
    read_exactly(fd, buffer, 8);
    read_exactly(fd, buffer, 4);
    unsigned length = ntohl(*(unsigned *)buffer);
    read_exactly(fd, buffer, length);
  }
  int rearm = getenv("W1_REARM") != NULL;
  int epoll = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
  /* CallMeta field 1: the method name. */
  const char *meta = "\x0a\x18/dms.rpc.v1.Health/Check";
  int meta_length = 26;
  long long *latency = malloc(sizeof(long long) * calls);
  char frame[64];
  int frame_length;
  for (int call = 1; call <= calls; call++) {
    if (ours) {
      /* CALL: length, type 1, flags 1 (END_STREAM), meta length, call id, meta. */
      unsigned length = htonl(8 + meta_length), id = htonl(call);
      unsigned short meta_size = htons(meta_length);
      memcpy(frame, &length, 4);
      frame[4] = 1;
      frame[5] = 1;
      memcpy(frame + 6, &meta_size, 2);
      memcpy(frame + 8, &id, 4);
      memcpy(frame + 12, meta, meta_length);
      frame_length = 12 + meta_length;
    } else {
      memcpy(frame, "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", 22);
      frame_length = 22;
    }
    long long start = now_ns();
    if (write(fd, frame, frame_length) != frame_length) { perror("write"); return 1; }
    if (rearm) {
      epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
      epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    }
    struct epoll_event ready;
    epoll_wait(epoll, &ready, 1, -1);
    if (read(fd, buffer, sizeof buffer) <= 0) { perror("read"); return 1; }
    latency[call - 1] = now_ns() - start;
  }
  long long *measured = latency + 1000;
  int count = calls - 1000;
  qsort(measured, count, sizeof(long long), by_value);
  printf("%s: min %.1f", argv[1], measured[0] / 1000.0);
  for (int decile = 1; decile < 10; decile++) printf(" p%d %.1f", decile * 10, measured[(long)count * decile / 10] / 1000.0);
  printf(" µs\n");
  return 0;
}
