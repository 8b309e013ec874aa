/*
 * xattr: batch reader/writer of extended attributes for hpcc (Node has no
 * xattr API). Never follows symlinks (llistxattr/lgetxattr/lsetxattr).
 *
 * Usage:  xattr list  < paths        xattr set  < records
 *
 * All integers are unsigned 32-bit little-endian ("u32"), errno values are
 * Linux errno numbers. Both output streams start with the 8-byte header
 * "HPXA" u32(version = 1) so a reader can detect a foreign or old tool.
 *
 * list mode
 *   stdin : paths, each terminated by one NUL byte (a path may not contain
 *           NUL; an empty path is reported as ENOENT).
 *   stdout: header, then one record per input path, in input order:
 *             u32 index        0-based position of the path in the input
 *             u32 errno        0 = ok; otherwise why the path failed (e.g.
 *                              ENOENT, EACCES, ENAMETOOLONG). ENOTSUP /
 *                              EOPNOTSUPP (no xattr support) also appear
 *                              here; the caller decides what they mean.
 *             u32 count        number of attributes that follow (0 on error)
 *             count times:
 *               u32 name_len, name bytes (no NUL), u32 value_len, value bytes
 *           An attribute removed between listing and reading is left out.
 *
 * set mode
 *   stdin : records, one per path:
 *             u32 path_len, path bytes, u32 count,
 *             count times: u32 name_len, name bytes, u32 value_len, value
 *           path_len 1..4096, name_len 1..255, value_len 0..65536 (the
 *           kernel's XATTR_* limits); anything else is a protocol error.
 *   stdout: header, then one record per failed attribute:
 *             u32 index (of the path record), u32 errno, u32 name_len, name
 *           A failure on one path or attribute never stops the batch.
 *
 * Exit status: 0 the batch was processed (per-path failures are in the
 * output), 1 usage error, 2 malformed input, 3 cannot write output or out
 * of memory. Diagnostics for 1..3 go to stderr as one line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/xattr.h>

#define PROTO_VERSION 1u
#define MAX_PATH_LEN 4096u
#define MAX_NAME_LEN 255u
#define MAX_VALUE_LEN 65536u
#define MAX_LIST_LEN 65536u /* XATTR_LIST_MAX */

enum { EXIT_USAGE = 1, EXIT_PROTO = 2, EXIT_OUTPUT = 3 };

static void die(int status, const char *msg) {
  fprintf(stderr, "xattr: %s\n", msg);
  exit(status);
}

static void put_bytes(const void *p, size_t n) {
  if (n > 0 && fwrite(p, 1, n, stdout) != n) die(EXIT_OUTPUT, "cannot write output");
}

static void put_u32(uint32_t v) {
  unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  put_bytes(b, 4);
}

static void put_header(void) {
  put_bytes("HPXA", 4);
  put_u32(PROTO_VERSION);
}

/* Reads exactly n bytes; returns 0 at a clean EOF before any byte, 1 on success. */
static int get_exact(void *p, size_t n, int eof_ok) {
  size_t got = n == 0 ? 0 : fread(p, 1, n, stdin);
  if (got == n) return 1;
  if (got == 0 && eof_ok && feof(stdin)) return 0;
  die(EXIT_PROTO, "truncated input record");
  return 0;
}

static int get_u32(uint32_t *v, int eof_ok) {
  unsigned char b[4];
  if (!get_exact(b, 4, eof_ok)) return 0;
  *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return 1;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n == 0 ? 1 : n);
  if (p == NULL) die(EXIT_OUTPUT, "out of memory");
  return p;
}

/* ------------------------------------------------------------------ list */

/* Fills *buf with the NUL-separated name list; returns its length or -errno. */
static ssize_t list_names(const char *path, char *buf, size_t cap) {
  ssize_t n = llistxattr(path, buf, cap);
  return n < 0 ? -errno : n;
}

/* Reads one value into buf (capacity MAX_VALUE_LEN); returns length or -errno. */
static ssize_t read_value(const char *path, const char *name, char *buf) {
  ssize_t n = lgetxattr(path, name, buf, MAX_VALUE_LEN);
  return n < 0 ? -errno : n;
}

/* A growable byte buffer for one path's attributes (bounded by what the
 * filesystem holds for one inode: at most 64 KiB of names, 64 KiB per value). */
struct buf {
  unsigned char *p;
  size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < b->len + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (q == NULL) die(EXIT_OUTPUT, "out of memory");
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void buf_u32(struct buf *b, uint32_t v) {
  unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  buf_add(b, x, 4);
}

static void list_one(uint32_t index, const char *path, size_t path_len, char *names, char *value,
                     struct buf *attrs) {
  uint32_t err = 0, count = 0;
  attrs->len = 0;
  if (path_len == 0 || path_len > MAX_PATH_LEN) {
    err = path_len == 0 ? ENOENT : ENAMETOOLONG;
  } else {
    ssize_t len = list_names(path, names, MAX_LIST_LEN);
    if (len < 0) err = (uint32_t)-len;
    for (ssize_t off = 0; len > 0 && off < len; off += (ssize_t)strlen(names + off) + 1) {
      const char *name = names + off;
      if (*name == '\0') continue;
      ssize_t vlen = read_value(path, name, value);
      if (vlen < 0) continue; /* removed since the listing (ENODATA) or unreadable */
      size_t nlen = strlen(name);
      buf_u32(attrs, (uint32_t)nlen);
      buf_add(attrs, name, nlen);
      buf_u32(attrs, (uint32_t)vlen);
      buf_add(attrs, value, (size_t)vlen);
      count++;
    }
  }
  put_u32(index);
  put_u32(err);
  put_u32(count);
  put_bytes(attrs->p, attrs->len);
}

static int cmd_list(void) {
  char *names = xmalloc(MAX_LIST_LEN);
  char *value = xmalloc(MAX_VALUE_LEN);
  char *line = NULL;
  size_t cap = 0;
  struct buf attrs = {NULL, 0, 0};
  uint32_t index = 0;
  put_header();
  for (;;) {
    ssize_t n = getdelim(&line, &cap, '\0', stdin);
    if (n < 0) break;
    size_t plen = (size_t)n;
    if (plen > 0 && line[plen - 1] == '\0') plen--;
    else if (plen > 0) die(EXIT_PROTO, "last path is not NUL-terminated");
    list_one(index++, line, plen, names, value, &attrs);
  }
  if (ferror(stdin)) die(EXIT_PROTO, "cannot read input");
  free(line);
  free(attrs.p);
  free(names);
  free(value);
  if (fflush(stdout) != 0) die(EXIT_OUTPUT, "cannot write output");
  return 0;
}

/* ------------------------------------------------------------------- set */

static void report_failure(uint32_t index, int err, const char *name, size_t nlen) {
  put_u32(index);
  put_u32((uint32_t)err);
  put_u32((uint32_t)nlen);
  put_bytes(name, nlen);
}

static int cmd_set(void) {
  char *path = xmalloc(MAX_PATH_LEN + 1);
  char name[MAX_NAME_LEN + 1];
  char *value = xmalloc(MAX_VALUE_LEN);
  uint32_t index = 0, plen, count;
  put_header();
  while (get_u32(&plen, 1)) {
    if (plen == 0 || plen > MAX_PATH_LEN) die(EXIT_PROTO, "path length out of range");
    get_exact(path, plen, 0);
    path[plen] = '\0';
    if (memchr(path, '\0', plen) != NULL) die(EXIT_PROTO, "path contains NUL");
    get_u32(&count, 0);
    for (uint32_t i = 0; i < count; i++) {
      uint32_t nlen, vlen;
      get_u32(&nlen, 0);
      if (nlen == 0 || nlen > MAX_NAME_LEN) die(EXIT_PROTO, "attribute name length out of range");
      get_exact(name, nlen, 0);
      name[nlen] = '\0';
      if (memchr(name, '\0', nlen) != NULL) die(EXIT_PROTO, "attribute name contains NUL");
      get_u32(&vlen, 0);
      if (vlen > MAX_VALUE_LEN) die(EXIT_PROTO, "attribute value too long");
      get_exact(value, vlen, 0);
      if (lsetxattr(path, name, value, vlen, 0) != 0) report_failure(index, errno, name, nlen);
    }
    index++;
  }
  free(path);
  free(value);
  if (fflush(stdout) != 0) die(EXIT_OUTPUT, "cannot write output");
  return 0;
}

int main(int argc, char **argv) {
  static char outbuf[1 << 16];
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  if (argc == 2 && strcmp(argv[1], "list") == 0) return cmd_list();
  if (argc == 2 && strcmp(argv[1], "set") == 0) return cmd_set();
  die(EXIT_USAGE, "usage: xattr list|set  (binary protocol on stdin/stdout; see xattr.c)");
  return EXIT_USAGE;
}
