/*
 * The fan-out benchmark's native subscriber sink: N count-only WebSocket subscribers in one
 * process, on epoll, counting delivered data messages. No dependency beyond libc.
 *
 * Why native: the Node generator spent 80-99% of a core reading frames at the benchmark's peaks,
 * so the peaks were the generator's. Here a read is one recv() into a big buffer and a walk over
 * frame headers; payloads are never looked at, except:
 *   - during a socket's handshake (the replies it waits for),
 *   - messages below --min-count when a --ping rule is set (e.g. Engine.IO's "2", answered "3"),
 *   - in --stream nats mode, where the payload bytes are the NATS protocol and `MSG ` lines are
 *     what is counted (nats-server puts several messages into one frame).
 *
 * What a target needs to say (the TypeScript target builds it, loadtest/native/spec.ts):
 *   --host H --port P --path /ws [--protocol SUBPROTO] --counters FILE --min-count BYTES
 *   --step OP,SENDHEX,MODE,EXPECTHEX   (repeated, in order) OP: '-' send nothing, 't' text, 'b' binary;
 *                                      MODE '^' the reply starts with EXPECT, '*' contains it; an empty
 *                                      EXPECT does not wait
 *   --fail MODE,HEX                    a handshake reply matching this fails the socket
 *   --ping HEX,OP,REPLYHEX             a short message (a line in stream mode) equal to HEX is answered
 *   --stream nats                      count `MSG ` lines of the payload byte stream
 *   --src A.B.C.D --per-src K          socket j binds to A.B.C.D + j / K (spread over 127.0.0.0/8)
 *   --concurrency C                    handshakes in flight at most
 * Commands on stdin, one per line: `open K` opens K more sockets. EOF on stdin ends the process.
 *
 * Counters go to FILE (created by the harness, SINK_FILE_BYTES long), mmapped: 64-bit little-
 * endian slots (see enum slot), published after each epoll batch under a sequence lock (slot
 * BEGIN and slot END hold the same number when the block between them is whole).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- counters file ------------------------------------------------------------------------- */

#define SINK_FILE_BYTES 512
#define CLOSE_CODE_SLOTS 16
#define ERROR_BYTES 128
enum slot {
  S_BEGIN = 0,
  S_VERSION,
  S_PID,
  S_COUNTED,      /* data messages counted (>= min-count, or MSG lines in stream mode) */
  S_BYTES,        /* their payload bytes (whole MSGs on the wire in stream mode) */
  S_REQUESTED,    /* sockets asked for by `open` */
  S_UPGRADED,     /* HTTP upgrade done */
  S_HANDSHAKEN,   /* handshake steps done: counting */
  S_FAILED,       /* connect, upgrade or handshake failed (last reason in the error text) */
  S_OPEN,         /* handshaken and not closed */
  S_CLOSED,       /* handshaken, then closed by the server (close frame or end of stream) */
  S_PINGS,        /* pings answered (WebSocket pings and the --ping rule) */
  S_READS,        /* recv() calls that returned data */
  S_ROUNDS,       /* epoll_wait() calls that returned events */
  S_CODES,        /* CLOSE_CODE_SLOTS pairs (code, count); code 1006: closed without a close frame */
  S_ERROR = S_CODES + 2 * CLOSE_CODE_SLOTS, /* ERROR_BYTES of text: the last failure */
  S_END = S_ERROR + ERROR_BYTES / 8,
};
_Static_assert((S_END + 1) * 8 <= SINK_FILE_BYTES, "counters file too small");

static uint64_t ctr[S_END + 1];
static volatile uint64_t *shared;
static int dirty;

static void publish_counters(void) {
  if (!dirty) return;
  dirty = 0;
  uint64_t seq = ctr[S_BEGIN] + 1;
  ctr[S_BEGIN] = ctr[S_END] = seq;
  __atomic_store_n(&shared[S_BEGIN], seq, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  for (int i = S_BEGIN + 1; i < S_END; i++) __atomic_store_n(&shared[i], ctr[i], __ATOMIC_RELAXED);
  __atomic_store_n(&shared[S_END], seq, __ATOMIC_RELEASE);
}

static void bump(int s, uint64_t by) {
  ctr[s] += by;
  dirty = 1;
}

static void close_code(unsigned code) {
  for (int i = 0; i < CLOSE_CODE_SLOTS; i++) {
    uint64_t *c = &ctr[S_CODES + 2 * i];
    if (c[1] == 0) c[0] = code;
    if (c[0] == code) {
      c[1]++;
      dirty = 1;
      return;
    }
  }
}

static void set_error(const char *fmt, ...) {
  char msg[ERROR_BYTES];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(&ctr[S_ERROR], msg, sizeof msg);
  dirty = 1;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("sink: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

/* ---- options --------------------------------------------------------------------------------- */

typedef struct {
  uint8_t *b;
  size_t n;
} bytes;

typedef struct {
  uint8_t op; /* 0 none, 1 text, 2 binary */
  bytes send;
  char mode; /* '^' prefix, '*' anywhere */
  bytes expect;
} step;

#define MAX_STEPS 8
static struct {
  const char *host, *path, *protocol, *counters;
  int port;
  uint64_t min_count;
  step steps[MAX_STEPS];
  int nsteps;
  char fail_mode;
  bytes fail;
  bytes ping, pong;
  uint8_t pong_op;
  int stream_nats;
  uint32_t src; /* host order */
  uint32_t per_src;
  int concurrency;
  int timeout_ms;
} o = { .host = "127.0.0.1", .path = "/", .src = 0x7f000001, .per_src = 20000, .concurrency = 200, .timeout_ms = 10000 };

static bytes hex(const char *s, size_t len) {
  if (len % 2) die("odd hex length");
  bytes r = { malloc(len / 2 + 1), len / 2 };
  for (size_t i = 0; i < r.n; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) die("bad hex");
    r.b[i] = (uint8_t)v;
  }
  return r;
}

/* Splits "a,b,c,d" into at most `max` fields (in place). */
static int fields(char *s, char **f, int max) {
  int n = 0;
  f[n++] = s;
  for (char *p = s; *p && n < max; p++)
    if (*p == ',') {
      *p = 0;
      f[n++] = p + 1;
    }
  return n;
}

static uint8_t opcode_of(const char *s) {
  if (!strcmp(s, "t")) return 1;
  if (!strcmp(s, "b")) return 2;
  if (!strcmp(s, "-") || !*s) return 0;
  die("bad opcode %s", s);
  return 0;
}

static char mode_of(const char *s) {
  if (*s != '^' && *s != '*') die("bad match mode %s", s);
  return *s;
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) die("missing value for %s", a);
    char *v = argv[++i];
    char *f[4];
    if (!strcmp(a, "--host")) o.host = v;
    else if (!strcmp(a, "--port")) o.port = atoi(v);
    else if (!strcmp(a, "--path")) o.path = v;
    else if (!strcmp(a, "--protocol")) o.protocol = v;
    else if (!strcmp(a, "--counters")) o.counters = v;
    else if (!strcmp(a, "--min-count")) o.min_count = strtoull(v, 0, 10);
    else if (!strcmp(a, "--concurrency")) o.concurrency = atoi(v);
    else if (!strcmp(a, "--timeout-ms")) o.timeout_ms = atoi(v);
    else if (!strcmp(a, "--per-src")) o.per_src = (uint32_t)strtoul(v, 0, 10);
    else if (!strcmp(a, "--stream")) {
      if (strcmp(v, "nats")) die("unknown stream %s", v);
      o.stream_nats = 1;
    } else if (!strcmp(a, "--src")) {
      struct in_addr in;
      if (inet_pton(AF_INET, v, &in) != 1) die("bad --src %s", v);
      o.src = ntohl(in.s_addr);
    } else if (!strcmp(a, "--step")) {
      if (o.nsteps == MAX_STEPS) die("too many steps");
      if (fields(v, f, 4) != 4) die("--step needs OP,SENDHEX,MODE,EXPECTHEX");
      step *s = &o.steps[o.nsteps++];
      s->op = opcode_of(f[0]);
      s->send = hex(f[1], strlen(f[1]));
      s->mode = mode_of(f[2]);
      s->expect = hex(f[3], strlen(f[3]));
    } else if (!strcmp(a, "--fail")) {
      if (fields(v, f, 2) != 2) die("--fail needs MODE,HEX");
      o.fail_mode = mode_of(f[0]);
      o.fail = hex(f[1], strlen(f[1]));
    } else if (!strcmp(a, "--ping")) {
      if (fields(v, f, 3) != 3) die("--ping needs HEX,OP,REPLYHEX");
      o.ping = hex(f[0], strlen(f[0]));
      o.pong_op = opcode_of(f[1]);
      o.pong = hex(f[2], strlen(f[2]));
    } else die("unknown option %s", a);
  }
  if (!o.port || !o.counters || o.per_src == 0 || o.concurrency < 1) die("need --port, --counters, and positive --per-src/--concurrency");
}

/* ---- SHA-1 and base64, for the upgrade's Sec-WebSocket-Accept ---------------------------------- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const uint8_t *msg, size_t len, uint8_t out[20]) {
  uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
  size_t total = ((len + 8) / 64 + 1) * 64;
  uint8_t *m = calloc(total, 1);
  memcpy(m, msg, len);
  m[len] = 0x80;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++) m[total - 1 - i] = (uint8_t)(bits >> (8 * i));
  for (size_t off = 0; off < total; off += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 | (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
      uint32_t f, k;
      if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
      else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
      else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      else f = b ^ c ^ d, k = 0xCA62C1D6;
      uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
  }
  free(m);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

static void base64(const uint8_t *in, size_t n, char *out) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t j = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
    out[j++] = t[v >> 18 & 63];
    out[j++] = t[v >> 12 & 63];
    out[j++] = i + 1 < n ? t[v >> 6 & 63] : '=';
    out[j++] = i + 2 < n ? t[v & 63] : '=';
  }
  out[j] = 0;
}

/* ---- connections ------------------------------------------------------------------------------- */

enum state { C_FREE, C_CONNECTING, C_UPGRADING, C_HANDSHAKE, C_OPEN, C_DONE };

#define MAX_HEAD 8192    /* upgrade response head */
#define MAX_COLLECT 65536 /* a handshake reply larger than this is not looked at */
#define MAX_LINE 512      /* NATS protocol line kept (longer ones, e.g. INFO, are cut) */

typedef struct {
  int fd;
  uint8_t state, step;
  /* frame being read, and where its payload goes */
  uint8_t head[14], head_len;
  uint8_t opcode, fin, masked, mask[4], to;
  uint64_t left, frame_len;
  /* message being read (fragments add up); during the handshake it is collected into buf */
  uint64_t msg_len;
  uint8_t msg_collect;
  /* the upgrade response head, then handshake replies (freed once the socket counts) */
  uint8_t *buf;
  uint32_t buf_len;
  /* a control frame's payload, or a one-frame message that may be a protocol ping */
  uint8_t small[125], small_len;
  /* bytes the kernel did not take yet */
  uint8_t *out;
  uint32_t out_len;
  /* NATS stream: MSG payload (and CRLF) bytes still to skip, and a line split over reads */
  uint64_t s_left;
  uint8_t *line;
  uint16_t line_len;
  uint8_t close_seen;
  char key[25];
  int64_t deadline_ms;
} conn;

static conn *conns;
static uint32_t nconns, cap_conns;
static uint64_t requested;
static int in_flight; /* connecting, upgrading or handshaking */
static int ep;
static uint8_t rbuf[1 << 20];
static uint64_t rng;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rand64(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void finish(conn *c, int failed, const char *why);

/* Queues bytes for the socket: written now if nothing is pending, the rest on EPOLLOUT. */
static void write_out(conn *c, const uint8_t *p, size_t n) {
  if (c->state == C_DONE) return;
  if (c->out_len == 0) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) return finish(c, c->state != C_OPEN, strerror(errno));
    if (w < 0) w = 0;
    p += w, n -= (size_t)w;
    if (n == 0) return;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c - conns) };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
  c->out = realloc(c->out, c->out_len + n);
  memcpy(c->out + c->out_len, p, n);
  c->out_len += (uint32_t)n;
}

static void flush_out(conn *c) {
  ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN) return finish(c, c->state != C_OPEN, strerror(errno));
  if (w <= 0) return;
  memmove(c->out, c->out + w, c->out_len - (size_t)w);
  c->out_len -= (uint32_t)w;
  if (c->out_len == 0) {
    free(c->out);
    c->out = NULL;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)(c - conns) };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
}

/* One masked client frame (RFC 6455 5.3: clients mask every frame). */
static void send_frame(conn *c, uint8_t opcode, const uint8_t *p, size_t n) {
  uint8_t small[256];
  size_t hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
  uint8_t *f = hl + 4 + n <= sizeof small ? small : malloc(hl + 4 + n);
  f[0] = 0x80 | opcode;
  if (n < 126) f[1] = 0x80 | (uint8_t)n;
  else if (n < 65536) f[1] = 0x80 | 126, f[2] = (uint8_t)(n >> 8), f[3] = (uint8_t)n;
  else {
    f[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) f[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
  }
  uint32_t m = (uint32_t)rand64();
  memcpy(f + hl, &m, 4);
  for (size_t i = 0; i < n; i++) f[hl + 4 + i] = p[i] ^ f[hl + (i & 3)];
  write_out(c, f, hl + 4 + n);
  if (f != small) free(f);
}

static void finish(conn *c, int failed, const char *why) {
  if (c->state == C_DONE) return;
  if (c->state == C_OPEN) {
    bump(S_OPEN, (uint64_t)-1);
    bump(S_CLOSED, 1);
    if (!c->close_seen) close_code(1006);
  } else {
    in_flight--;
    if (failed) {
      bump(S_FAILED, 1);
      set_error("socket %u: %s", (unsigned)(c - conns), why);
    }
  }
  close(c->fd); /* also removes it from the epoll set */
  c->state = C_DONE;
  free(c->buf), c->buf = NULL;
  free(c->out), c->out = NULL;
  free(c->line), c->line = NULL;
  c->out_len = 0;
}

static int matches(const uint8_t *p, size_t n, char mode, const bytes *m) {
  if (m->n == 0 || n < m->n) return 0;
  if (mode == '^') return memcmp(p, m->b, m->n) == 0;
  return memmem(p, n, m->b, m->n) != NULL;
}

/* Sends the current step's frame and moves past steps that wait for nothing. */
static void enter_steps(conn *c) {
  while (c->step < o.nsteps) {
    step *s = &o.steps[c->step];
    if (s->op) send_frame(c, s->op, s->send.b, s->send.n);
    if (c->state == C_DONE) return;
    if (s->expect.n) return;
    c->step++;
  }
  c->state = C_OPEN;
  free(c->buf), c->buf = NULL;
  in_flight--;
  bump(S_HANDSHAKEN, 1);
  bump(S_OPEN, 1);
}

/* A message (or a NATS line) received during the handshake. */
static void handshake_reply(conn *c, const uint8_t *p, size_t n) {
  if (matches(p, n, o.fail_mode, &o.fail)) {
    char text[80];
    size_t k = n < sizeof text - 1 ? n : sizeof text - 1;
    for (size_t i = 0; i < k; i++) text[i] = p[i] >= 32 && p[i] < 127 ? (char)p[i] : '.';
    text[k] = 0;
    return finish(c, 1, text);
  }
  step *s = &o.steps[c->step];
  if (matches(p, n, s->mode, &s->expect)) {
    c->step++;
    enter_steps(c);
  }
}

/* ---- the NATS protocol as a byte stream (--stream nats) ---------------------------------------- */

static void nats_line(conn *c, const uint8_t *b, size_t n) {
  if (n > 0 && b[n - 1] == '\r') n--;
  if (n >= 6 && memcmp(b, "MSG ", 4) == 0) {
    /* MSG <subject> <sid> [reply-to] <#bytes>: the size is the last field. */
    uint64_t size = 0, mul = 1;
    size_t k = n - 1;
    while (k > 0 && b[k] >= '0' && b[k] <= '9') size += (uint64_t)(b[k] - '0') * mul, mul *= 10, k--;
    if (mul == 1 || b[k] != ' ') return finish(c, c->state != C_OPEN, "bad MSG line");
    bump(S_COUNTED, 1);
    bump(S_BYTES, n + 2 + size + 2);
    c->s_left = size + 2;
    return;
  }
  if (o.ping.n && n == o.ping.n && memcmp(b, o.ping.b, n) == 0) {
    send_frame(c, o.pong_op, o.pong.b, o.pong.n);
    bump(S_PINGS, 1);
    return;
  }
  if (c->state == C_HANDSHAKE) handshake_reply(c, b, n);
}

static void nats_push(conn *c, const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n && c->state != C_DONE) {
    if (c->s_left > 0) {
      size_t k = c->s_left < n - i ? (size_t)c->s_left : n - i;
      i += k;
      c->s_left -= k;
      continue;
    }
    const uint8_t *lf = memchr(p + i, '\n', n - i);
    size_t end = lf ? (size_t)(lf - p) : n;
    if (lf && c->line_len == 0) nats_line(c, p + i, end - i);
    else {
      if (!c->line) c->line = malloc(MAX_LINE);
      size_t k = end - i;
      if (k > (size_t)(MAX_LINE - c->line_len)) k = MAX_LINE - c->line_len; /* cut: only MSG lines are parsed to their end */
      memcpy(c->line + c->line_len, p + i, k);
      c->line_len += (uint16_t)k;
      if (lf) {
        size_t len = c->line_len;
        c->line_len = 0;
        nats_line(c, c->line, len);
      }
    }
    i = lf ? end + 1 : n;
  }
}

/* ---- WebSocket frames ---------------------------------------------------------------------------- */

static size_t header_len(uint8_t b1) {
  uint8_t l = b1 & 0x7f;
  return 2 + (l == 126 ? 2 : l == 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

/* Where a frame's payload goes. */
enum { TO_SKIP, TO_SMALL, TO_BUF, TO_STREAM };

static void pong_rule(conn *c) {
  send_frame(c, o.pong_op, o.pong.b, o.pong.n);
  bump(S_PINGS, 1);
}

static void end_frame(conn *c) {
  if (c->opcode >= 8) {
    if (c->opcode == 9) {
      send_frame(c, 0xA, c->small, c->small_len);
      bump(S_PINGS, 1);
    } else if (c->opcode == 8 && !c->close_seen) {
      unsigned code = c->small_len >= 2 ? (unsigned)c->small[0] << 8 | c->small[1] : 1005;
      unsigned echo = code == 1005 ? 1000 : code;
      c->close_seen = 1;
      if (c->state == C_OPEN) close_code(code);
      send_frame(c, 8, (uint8_t[]){ (uint8_t)(echo >> 8), (uint8_t)echo }, 2); /* then the server ends the TCP connection */
      if (c->state != C_OPEN) {
        char why[64];
        snprintf(why, sizeof why, "closed by the server during the handshake (code %u)", code);
        finish(c, 1, why);
      }
    }
    return;
  }
  if (o.stream_nats) return; /* the stream counts */
  c->msg_len += c->frame_len;
  if (!c->fin) return;
  uint64_t len = c->msg_len;
  c->msg_len = 0;
  if (len >= o.min_count) {
    bump(S_COUNTED, 1);
    bump(S_BYTES, len);
  }
  if (c->to == TO_SMALL) {
    if (c->small_len == o.ping.n && memcmp(c->small, o.ping.b, o.ping.n) == 0) pong_rule(c);
  } else if (c->msg_collect && c->state == C_HANDSHAKE) {
    c->msg_collect = 0;
    if (o.ping.n && len == o.ping.n && memcmp(c->buf, o.ping.b, o.ping.n) == 0) pong_rule(c);
    else handshake_reply(c, c->buf, c->buf_len);
  }
}

static void start_frame(conn *c, const uint8_t *h) {
  c->fin = h[0] >> 7;
  c->opcode = h[0] & 0x0f;
  uint64_t len = h[1] & 0x7f;
  size_t p = 2;
  if (len == 126) len = (uint64_t)h[2] << 8 | h[3], p = 4;
  else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
    p = 10;
  }
  c->masked = h[1] >> 7; /* servers must not mask; tolerated */
  if (c->masked) memcpy(c->mask, h + p, 4);
  if (h[0] & 0x70) return finish(c, c->state != C_OPEN, "reserved bits set (extension not negotiated)");
  if (c->opcode >= 8) {
    if (len > 125 || !c->fin || c->opcode > 10) return finish(c, c->state != C_OPEN, "bad control frame");
    c->to = TO_SMALL; /* read whole: a ping's payload is echoed, a close carries its code */
  } else if (c->opcode > 2) return finish(c, c->state != C_OPEN, "reserved opcode");
  else if (o.stream_nats) c->to = TO_STREAM;
  else {
    if (c->opcode != 0) {
      /* A new message. Looked at only during the handshake, or when it may be a protocol ping. */
      c->msg_len = 0;
      c->buf_len = 0;
      c->msg_collect = c->state == C_HANDSHAKE;
    }
    if (c->msg_collect && c->buf_len + len > MAX_COLLECT) c->msg_collect = 0; /* too big to be a reply we wait for */
    if (c->msg_collect && !c->buf) c->buf = malloc(MAX_COLLECT);
    c->to = c->msg_collect ? TO_BUF : c->opcode != 0 && c->fin && o.ping.n && len == o.ping.n && len < o.min_count ? TO_SMALL : TO_SKIP;
  }
  c->small_len = 0;
  c->left = c->frame_len = len;
  if (len == 0) end_frame(c);
}

/* Payload bytes [p, p+n) of the current frame. */
static void payload(conn *c, uint8_t *p, size_t n) {
  if (c->to == TO_SKIP) return; /* count-only: never looked at */
  if (c->masked) {
    uint64_t pos = c->frame_len - c->left;
    for (size_t i = 0; i < n; i++) p[i] ^= c->mask[(pos + i) & 3]; /* in place: rbuf is ours */
  }
  if (c->to == TO_SMALL) memcpy(c->small + c->small_len, p, n), c->small_len += (uint8_t)n;
  else if (c->to == TO_BUF) memcpy(c->buf + c->buf_len, p, n), c->buf_len += (uint32_t)n;
  else nats_push(c, p, n);
}

static void frames(conn *c, uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n && c->state != C_DONE) {
    if (c->left > 0) {
      size_t k = c->left < n - i ? (size_t)c->left : n - i;
      payload(c, p + i, k);
      i += k;
      c->left -= k;
      if (c->left == 0 && c->state != C_DONE) end_frame(c);
      continue;
    }
    if (c->head_len == 0 && n - i >= 2) {
      size_t hl = header_len(p[i + 1]);
      if (n - i >= hl) {
        start_frame(c, p + i);
        i += hl;
        continue;
      }
    }
    c->head[c->head_len++] = p[i++];
    if (c->head_len >= 2 && c->head_len == header_len(c->head[1])) {
      c->head_len = 0;
      start_frame(c, c->head);
    }
  }
}

/* ---- upgrade ------------------------------------------------------------------------------------ */

static const char *header(const char *head, const char *name) {
  size_t n = strlen(name);
  for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n"))
    if (strncasecmp(l + 2, name, n) == 0 && l[2 + n] == ':') {
      const char *v = l + 3 + n;
      while (*v == ' ') v++;
      return v;
    }
  return NULL;
}

static int header_is(const char *head, const char *name, const char *value) {
  const char *v = header(head, name);
  size_t n = strlen(value);
  return v && strncmp(v, value, n) == 0 && (v[n] == '\r' || v[n] == ' ');
}

static void upgrade_bytes(conn *c, uint8_t *p, size_t n) {
  size_t room = MAX_HEAD - c->buf_len;
  size_t k = n < room ? n : room;
  memcpy(c->buf + c->buf_len, p, k);
  c->buf_len += (uint32_t)k;
  c->buf[c->buf_len] = 0;
  char *end = strstr((char *)c->buf, "\r\n\r\n");
  if (!end) {
    if (c->buf_len >= MAX_HEAD) finish(c, 1, "upgrade response head too large");
    return;
  }
  end[2] = 0; /* keep the last header's CRLF for header() */
  const char *head = (const char *)c->buf;
  char src[64], accept[40];
  uint8_t digest[20];
  snprintf(src, sizeof src, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
  sha1((const uint8_t *)src, strlen(src), digest);
  base64(digest, 20, accept);
  if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
    char why[80];
    snprintf(why, sizeof why, "upgrade refused: %.60s", head);
    char *cr = strchr(why, '\r');
    if (cr) *cr = 0;
    return finish(c, 1, why);
  }
  if (!header_is(head, "sec-websocket-accept", accept)) return finish(c, 1, "bad Sec-WebSocket-Accept");
  if (o.protocol && !header_is(head, "sec-websocket-protocol", o.protocol)) return finish(c, 1, "server did not accept the subprotocol");
  if (header(head, "sec-websocket-extensions")) return finish(c, 1, "server negotiated an extension we do not support");
  size_t used = (size_t)((uint8_t *)end + 4 - c->buf) - (c->buf_len - k); /* of this read */
  free(c->buf), c->buf = NULL; /* replies are collected into a buffer of their own size */
  c->buf_len = 0;
  c->state = C_HANDSHAKE;
  bump(S_UPGRADED, 1);
  enter_steps(c);
  if (c->state != C_DONE && used < n) frames(c, p + used, n - used);
}

/* ---- the event loop ------------------------------------------------------------------------------ */

static void start_connect(void) {
  if (nconns == cap_conns) {
    cap_conns = cap_conns ? 2 * cap_conns : 1024;
    conns = realloc(conns, cap_conns * sizeof *conns);
  }
  uint32_t idx = nconns++;
  conn *c = &conns[idx];
  memset(c, 0, sizeof *c);
  in_flight++;
  c->state = C_CONNECTING;
  c->deadline_ms = now_ms() + o.timeout_ms;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    c->state = C_DONE;
    in_flight--;
    bump(S_FAILED, 1);
    set_error("socket(): %s", strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* The port is chosen at connect(), per destination: a source address is not limited to one port range for all. */
  setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(o.src + idx / o.per_src) };
  struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o.port) };
  inet_pton(AF_INET, o.host, &dst.sin_addr);
  if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) return finish(c, 1, strerror(errno));
  if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) return finish(c, 1, strerror(errno));
  struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.u32 = idx };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) return finish(c, 1, strerror(errno));
}

static void on_connected(conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) return finish(c, 1, strerror(err));
  uint8_t key[16];
  for (int i = 0; i < 16; i += 8) {
    uint64_t r = rand64();
    memcpy(key + i, &r, 8);
  }
  base64(key, 16, c->key);
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                   o.path, o.host, o.port, c->key, o.protocol ? "Sec-WebSocket-Protocol: " : "", o.protocol ? o.protocol : "", o.protocol ? "\r\n" : "");
  if (n <= 0 || (size_t)n >= sizeof req) return finish(c, 1, "request too long");
  c->state = C_UPGRADING;
  c->buf = malloc(MAX_HEAD + 1);
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)(c - conns) };
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  write_out(c, (const uint8_t *)req, (size_t)n);
}

static void on_readable(conn *c) {
  ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    char why[96];
    snprintf(why, sizeof why, "connection %s %s", n == 0 ? "ended" : strerror(errno),
             c->state == C_UPGRADING ? "during the upgrade" : c->state == C_HANDSHAKE ? "during the handshake" : "");
    return finish(c, 1, why);
  }
  ctr[S_READS]++;
  if (c->state == C_UPGRADING) upgrade_bytes(c, rbuf, (size_t)n);
  else frames(c, rbuf, (size_t)n);
}

/* `open K` lines on stdin; returns 0 at EOF. */
static int read_commands(void) {
  static char line[256];
  static size_t len;
  ssize_t n = read(0, line + len, sizeof line - 1 - len);
  if (n <= 0) return n < 0 && errno == EINTR;
  len += (size_t)n;
  line[len] = 0;
  char *nl;
  while ((nl = strchr(line, '\n'))) {
    *nl = 0;
    unsigned long k;
    if (sscanf(line, "open %lu", &k) == 1) {
      requested += k;
      bump(S_REQUESTED, k);
    } else fprintf(stderr, "sink: unknown command '%s'\n", line);
    len -= (size_t)(nl + 1 - line);
    memmove(line, nl + 1, len + 1);
  }
  if (len == sizeof line - 1) len = 0; /* a line that long is no command */
  return 1;
}

static void sweep_deadlines(void) {
  int64_t now = now_ms();
  for (uint32_t i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    if (c->state >= C_CONNECTING && c->state <= C_HANDSHAKE && now > c->deadline_ms) {
      char why[64];
      snprintf(why, sizeof why, "no handshake within %d ms (state %d, step %d)", o.timeout_ms, c->state, c->step);
      finish(c, 1, why);
    }
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the harness */
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrandom(&rng, sizeof rng, 0) != sizeof rng || rng == 0) rng = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ull | 1;

  int fd = open(o.counters, O_RDWR);
  if (fd < 0) die("open %s: %s", o.counters, strerror(errno));
  if (ftruncate(fd, SINK_FILE_BYTES) < 0) die("ftruncate: %s", strerror(errno));
  shared = mmap(NULL, SINK_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (shared == MAP_FAILED) die("mmap: %s", strerror(errno));
  close(fd);
  ctr[S_VERSION] = 1;
  ctr[S_PID] = (uint64_t)getpid();
  dirty = 1;
  publish_counters();

  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event sev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) < 0) die("epoll stdin: %s", strerror(errno));

  struct epoll_event evs[1024];
  int64_t last_sweep = now_ms();
  /*
   * Each socket is read as soon as it is readable. Reading in rounds a little later (fewer, larger
   * reads) cut the sink's CPU by a third here, but the server then delivered up to a third less
   * (most likely its TCP, BBR here, sending less as the ACKs came later): the benchmark would
   * measure the sink's read pattern, not the server.
   */
  for (;;) {
    while (in_flight < o.concurrency && nconns < requested) start_connect();
    publish_counters();
    int n = epoll_wait(ep, evs, 1024, in_flight ? 100 : 1000);
    if (n > 0) ctr[S_ROUNDS]++;
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      uint32_t idx = evs[i].data.u32;
      if (idx == UINT32_MAX) {
        if (!read_commands()) {
          publish_counters();
          return 0; /* the harness is gone or done */
        }
        continue;
      }
      conn *c = &conns[idx];
      if (c->state == C_DONE) continue;
      if (c->state == C_CONNECTING) {
        if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
        continue;
      }
      if ((evs[i].events & EPOLLOUT) && c->out_len) flush_out(c);
      if (c->state != C_DONE && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
    }
    if (in_flight && now_ms() - last_sweep >= 100) {
      sweep_deadlines();
      last_sweep = now_ms();
    }
  }
}
