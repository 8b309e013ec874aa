/*
 * Strict parser of the launch plan wire format, versions 2 to 4 (version 1
 * lacked the `command` field; version 3 adds the overlay op's `methods` and
 * `fuse-overlayfs` fields, a version-2 overlay is kernel overlayfs only;
 * version 4 adds the squashfuse root's `warm` fields).
 * The format is documented (and encoded) in src/runtime/codec.ts; the short form:
 *
 *   "HPCC-PLAN 3\n", then fields in a fixed order, each
 *       KEY ' ' LEN '\n' LEN bytes '\n'
 *   KEY is the expected field name, LEN a decimal byte count (no sign, no
 *   leading zeros), the bytes contain no NUL. After the argv list comes
 *   "command", the index in argv where the user's command starts (0 .. argc-1;
 *   the part before it is the env-script wrapper). The last field is
 *   "end 0\n\n", after which the input must end.
 *
 * Parsing is in place: the '\n' after each value becomes the value's NUL,
 * so strings point into the buffer. Every count and length is bounded
 * (launch.h), so hostile input costs at most PLAN_MAX_BYTES plus the
 * pointer arrays.
 */
#include "launch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rd {
  char *buf;
  size_t len, pos;
  char *err;
  size_t errlen;
};

static int perr(struct rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct rd *r, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, r->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

int plan_read_fd(int fd, char **bufp, size_t *lenp, char *err, size_t errlen)
{
  size_t cap = 64 << 10, len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (;;) {
    if (len == cap) {
      if (cap >= PLAN_MAX_BYTES) {
        free(buf);
        snprintf(err, errlen, "plan larger than %u bytes", PLAN_MAX_BYTES);
        errno = EFBIG;
        return -1;
      }
      size_t ncap = cap * 2 > PLAN_MAX_BYTES ? PLAN_MAX_BYTES : cap * 2;
      char *nb = realloc(buf, ncap + 1);
      if (!nb) {
        free(buf);
        snprintf(err, errlen, "out of memory");
        return -1;
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      free(buf);
      snprintf(err, errlen, "read plan: %s", strerror(e));
      errno = e;
      return -1;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  *bufp = buf;
  *lenp = len;
  return 0;
}

/* One field: KEY ' ' LEN '\n' bytes '\n'. */
static int field(struct rd *r, const char *key, size_t max, char **val, size_t *vlen)
{
  size_t klen = strlen(key);
  if (r->len - r->pos < klen + 1 || memcmp(r->buf + r->pos, key, klen) != 0 || r->buf[r->pos + klen] != ' ')
    return perr(r, "expected field '%s' at byte %zu", key, r->pos);
  r->pos += klen + 1;
  size_t n = 0, digits = 0, start = r->pos;
  while (r->pos < r->len && r->buf[r->pos] >= '0' && r->buf[r->pos] <= '9') {
    if (++digits > 9) return perr(r, "field '%s': length has too many digits", key);
    n = n * 10 + (size_t)(r->buf[r->pos] - '0');
    r->pos++;
  }
  if (digits == 0 || r->pos >= r->len || r->buf[r->pos] != '\n')
    return perr(r, "field '%s': bad or truncated length at byte %zu", key, start);
  if (digits > 1 && r->buf[start] == '0') return perr(r, "field '%s': length has a leading zero", key);
  r->pos++;
  if (n > max) return perr(r, "field '%s': %zu bytes exceeds the limit of %zu", key, n, max);
  if (r->len - r->pos < n + 1) return perr(r, "field '%s': truncated (plan ends at byte %zu)", key, r->len);
  if (memchr(r->buf + r->pos, '\0', n)) return perr(r, "field '%s' contains a NUL byte", key);
  if (r->buf[r->pos + n] != '\n') return perr(r, "field '%s': missing newline after %zu bytes", key, n);
  r->buf[r->pos + n] = '\0';
  *val = r->buf + r->pos;
  *vlen = n;
  r->pos += n + 1;
  return 0;
}

static int str_field(struct rd *r, const char *key, size_t max, const char **out)
{
  char *v;
  size_t n;
  if (field(r, key, max, &v, &n)) return -1;
  *out = v;
  return 0;
}

static int num_field(struct rd *r, const char *key, uint64_t max, int base, uint64_t *out)
{
  char *v;
  size_t n;
  if (field(r, key, 20, &v, &n)) return -1;
  if (n == 0 || (n > 1 && v[0] == '0')) return perr(r, "field '%s': bad number '%s'", key, v);
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(v[i] - '0');
    if (d >= (unsigned)base) return perr(r, "field '%s': bad number '%s'", key, v);
    if (x > (UINT64_MAX - d) / (uint64_t)base) return perr(r, "field '%s': number too large", key);
    x = x * (uint64_t)base + d;
  }
  if (x > max) return perr(r, "field '%s': %s out of range", key, v);
  *out = x;
  return 0;
}

static int bool_field(struct rd *r, const char *key, int *out)
{
  uint64_t x;
  if (num_field(r, key, 1, 10, &x)) return -1;
  *out = (int)x;
  return 0;
}

/* Absolute, no "." or ".." components, no empty components except a lone "/". */
static int path_field(struct rd *r, const char *key, const char **out)
{
  const char *v;
  if (str_field(r, key, PLAN_MAX_PATH, &v)) return -1;
  if (v[0] != '/') return perr(r, "field '%s': path '%s' is not absolute", key, v);
  for (const char *c = v + 1; *c;) {
    const char *e = strchr(c, '/');
    size_t n = e ? (size_t)(e - c) : strlen(c);
    if ((n == 0 && e) || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
      return perr(r, "field '%s': path '%s' has an empty, '.' or '..' component", key, v);
    c += n + (e ? 1 : 0);
  }
  *out = v;
  return 0;
}

static int count_field(struct rd *r, const char *key, size_t max, size_t *out)
{
  uint64_t x;
  if (num_field(r, key, max, 10, &x)) return -1;
  *out = (size_t)x;
  return 0;
}

const char *op_name(enum op_kind k)
{
  static const char *names[] = {"bind", "tmpfs", "proc", "mkdir", "file", "overlay", "remount-ro"};
  return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* "kernel,fuse,skeleton": 1..3 distinct names, in the order to try */
static int methods_field(struct rd *r, struct mount_op *o)
{
  static const char *names[] = {"kernel", "fuse", "skeleton"};
  const char *v;
  if (str_field(r, "methods", 32, &v)) return -1;
  o->nmethods = 0;
  for (const char *c = v;;) {
    const char *e = strchr(c, ',');
    size_t n = e ? (size_t)(e - c) : strlen(c), k;
    for (k = 0; k < 3; k++)
      if (strlen(names[k]) == n && !strncmp(c, names[k], n)) break;
    if (k == 3) return perr(r, "field 'methods': unknown overlay method in '%s'", v);
    for (size_t j = 0; j < o->nmethods; j++)
      if (o->methods[j] == (enum ovl_method)k) return perr(r, "field 'methods': '%s' repeats a method", v);
    o->methods[o->nmethods++] = (enum ovl_method)k;
    if (!e) break;
    c = e + 1;
  }
  return 0;
}

static int has_method(const struct mount_op *o, enum ovl_method m)
{
  for (size_t j = 0; j < o->nmethods; j++)
    if (o->methods[j] == m) return 1;
  return 0;
}

static int parse_op(struct rd *r, struct mount_op *o, unsigned version)
{
  const char *kind;
  uint64_t x;
  if (str_field(r, "op", 16, &kind)) return -1;
  memset(o, 0, sizeof *o);
  if (!strcmp(kind, "bind")) {
    o->kind = OP_BIND;
    return path_field(r, "src", &o->src) || path_field(r, "dst", &o->dst) ||
                   bool_field(r, "readonly", &o->readonly) || bool_field(r, "optional", &o->optional)
               ? -1
               : 0;
  }
  if (!strcmp(kind, "tmpfs")) {
    o->kind = OP_TMPFS;
    if (path_field(r, "dst", &o->dst) || num_field(r, "mode", 07777, 8, &x)) return -1;
    o->mode = (unsigned)x;
    return num_field(r, "size", UINT64_MAX >> 1, 10, &o->size);
  }
  if (!strcmp(kind, "proc")) {
    o->kind = OP_PROC;
    return path_field(r, "dst", &o->dst);
  }
  if (!strcmp(kind, "mkdir")) {
    o->kind = OP_MKDIR;
    if (path_field(r, "dst", &o->dst) || num_field(r, "mode", 07777, 8, &x)) return -1;
    o->mode = (unsigned)x;
    return 0;
  }
  if (!strcmp(kind, "file")) {
    char *c;
    o->kind = OP_FILE;
    if (path_field(r, "dst", &o->dst) || num_field(r, "mode", 07777, 8, &x)) return -1;
    o->mode = (unsigned)x;
    if (field(r, "content", PLAN_MAX_CONTENT, &c, &o->content_len)) return -1;
    o->content = c;
    return 0;
  }
  if (!strcmp(kind, "overlay")) {
    o->kind = OP_OVERLAY;
    if (path_field(r, "dst", &o->dst) || bool_field(r, "writable", &o->writable)) return -1;
    o->ovl_helper = "";
    if (version < 3) {
      o->methods[0] = OVL_KERNEL;
      o->nmethods = 1;
      return 0;
    }
    if (methods_field(r, o)) return -1;
    if (has_method(o, OVL_FUSE)) {
      if (path_field(r, "fuse-overlayfs", &o->ovl_helper)) return -1;
    } else if (str_field(r, "fuse-overlayfs", 0, &o->ovl_helper)) {
      return -1;
    }
    if (o->writable && has_method(o, OVL_SKELETON)) return perr(r, "a writable overlay cannot be a skeleton");
    return 0;
  }
  if (!strcmp(kind, "remount-ro")) {
    o->kind = OP_REMOUNT_RO;
    return path_field(r, "dst", &o->dst);
  }
  return perr(r, "unknown mount op '%s'", kind);
}

static int str_list(struct rd *r, const char *countkey, const char *key, size_t maxn, size_t *n, char ***out,
                    int env)
{
  if (count_field(r, countkey, maxn, n)) return -1;
  char **v = calloc(*n + 1, sizeof *v);
  if (!v) return perr(r, "out of memory");
  for (size_t i = 0; i < *n; i++) {
    const char *s;
    if (str_field(r, key, PLAN_MAX_STRING, &s)) {
      free(v);
      return -1;
    }
    if (env && (s[0] == '=' || !strchr(s, '='))) {
      free(v);
      return perr(r, "env entry %zu is not KEY=VALUE", i);
    }
    v[i] = (char *)s;
  }
  *out = v;
  return 0;
}

/* version 4: "warm" 0|1|2 (2: required, --sharens: no launch without joining); with 1 or 2: warm-dir (path), warm-key (16..64 hex digits), warm-idle (seconds,
 * 1..604800), warm-id (the image identity, digits and ':' only) */
static int warm_fields(struct rd *r, struct plan *p)
{
  uint64_t on;
  if (num_field(r, "warm", 2, 10, &on)) return -1;
  if (!on) return 0;
  p->warm_required = on == 2;
  if (path_field(r, "warm-dir", &p->warm_dir) || str_field(r, "warm-key", 64, &p->warm_key) ||
      num_field(r, "warm-idle", 604800, 10, &p->warm_idle) || str_field(r, "warm-id", 256, &p->warm_id))
    return -1;
  size_t n = strlen(p->warm_key);
  if (n < 16 || strspn(p->warm_key, "0123456789abcdef") != n) return perr(r, "field 'warm-key': not 16 to 64 hex digits");
  if (p->warm_idle == 0) return perr(r, "field 'warm-idle': 0 (no warm mount is written as warm 0)");
  if (!p->warm_id[0] || strspn(p->warm_id, "0123456789:") != strlen(p->warm_id))
    return perr(r, "field 'warm-id': not an image identity");
  return 0;
}

int plan_parse(char *buf, size_t len, struct plan *p, char *err, size_t errlen)
{
  struct rd rr = {buf, len, 0, err, errlen}, *r = &rr;
  uint64_t x;
  const char *kind;
  static const char magic[] = HPCC_PLAN_MAGIC " ";
  memset(p, 0, sizeof *p);
  if (len < sizeof magic - 1 || memcmp(buf, magic, sizeof magic - 1) != 0)
    return perr(r, "not an hpcc launch plan (no '" HPCC_PLAN_MAGIC "' header)");
  r->pos = sizeof magic - 1;
  {
    size_t s = r->pos;
    while (r->pos < len && buf[r->pos] != '\n' && r->pos - s < 12) r->pos++;
    if (r->pos >= len || buf[r->pos] != '\n') return perr(r, "truncated plan header");
    buf[r->pos] = '\0';
    if (strcmp(buf + s, "2") == 0) p->version = 2;
    else if (strcmp(buf + s, "3") == 0) p->version = 3;
    else if (strcmp(buf + s, "4") == 0) p->version = 4;
    else
      return perr(r, "plan version '%s' is not supported (this helper reads versions %d to %d)", buf + s,
                  HPCC_PLAN_VERSION_MIN, HPCC_PLAN_VERSION);
    r->pos++;
  }
  if (num_field(r, "uid.inside", UINT32_MAX - 1, 10, &x)) return -1;
  p->uid_in = (uint32_t)x;
  if (num_field(r, "uid.outside", UINT32_MAX - 1, 10, &x)) return -1;
  p->uid_out = (uint32_t)x;
  if (num_field(r, "gid.inside", UINT32_MAX - 1, 10, &x)) return -1;
  p->gid_in = (uint32_t)x;
  if (num_field(r, "gid.outside", UINT32_MAX - 1, 10, &x)) return -1;
  p->gid_out = (uint32_t)x;
  if (bool_field(r, "pidns", &p->pidns)) return -1;
  if (str_field(r, "rootfs", 16, &kind)) return -1;
  if (!strcmp(kind, "squashfuse")) {
    p->rootfs_fuse = 1;
    if (path_field(r, "image", &p->image) || num_field(r, "offset", INT64_MAX, 10, &p->offset) ||
        path_field(r, "fuse-helper", &p->fuse_helper) || path_field(r, "mountpoint", &p->mountpoint))
      return -1;
    if (p->version >= 4 && warm_fields(r, p)) return -1;
  } else if (!strcmp(kind, "dir")) {
    if (path_field(r, "path", &p->rootdir)) return -1;
  } else {
    return perr(r, "unknown rootfs kind '%s'", kind);
  }
  if (path_field(r, "stage", &p->stage)) return -1;
  if (!strcmp(p->stage, "/")) return perr(r, "stage may not be '/'");
  if (count_field(r, "mounts", PLAN_MAX_MOUNTS, &p->nmounts)) return -1;
  p->mounts = calloc(p->nmounts + 1, sizeof *p->mounts);
  if (!p->mounts) return perr(r, "out of memory");
  for (size_t i = 0; i < p->nmounts; i++)
    if (parse_op(r, &p->mounts[i], p->version)) return -1;
  if (path_field(r, "cwd", &p->cwd)) return -1;
  if (str_list(r, "env", "e", PLAN_MAX_ENV, &p->nenv, &p->env, 1)) return -1;
  if (str_list(r, "argv", "a", PLAN_MAX_ARGV, &p->nargv, &p->argv, 0)) return -1;
  if (p->nargv == 0) return perr(r, "argv is empty");
  if (p->argv[0][0] == '\0') return perr(r, "argv[0] is empty");
  if (count_field(r, "command", p->nargv - 1, &p->command_index)) return -1;
  {
    char *v;
    size_t n;
    if (field(r, "end", 0, &v, &n)) return -1;
  }
  if (r->pos != len) return perr(r, "%zu bytes of trailing data after 'end'", len - r->pos);
  return 0;
}
