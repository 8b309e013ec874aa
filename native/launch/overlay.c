/*
 * The overlay op: make paths creatable over the read-only image, with the
 * plan's methods tried in the plan's order (the order is policy, decided by
 * src/runtime/builder; this file only acts):
 *
 *   kernel    overlayfs in the user namespace (Linux 5.11+, not everywhere)
 *   fuse      fuse-overlayfs on the same upper/work directories. The
 *             container process opens /dev/fuse and mounts it (it holds
 *             CAP_SYS_ADMIN in the namespace), then hands the device to the
 *             helper process over a socket; the helper starts the server
 *             (`fuse-overlayfs -f -o lowerdir=,upperdir=,workdir= /dev/fd/N`,
 *             libfuse >= 3.3 takes a mounted device that way, so no
 *             fusermount3) as its own child in its own mount namespace, where
 *             STAGE/root is the bare image, stops it after the container ended
 *             and kills it with itself (PDEATHSIG). The payload never sees it.
 *             Only for an overlay on "/".
 *   skeleton  a tmpfs on dst holding a bind of each of the image's entries
 *             (symlinks are copied), with directories on the way to a missing
 *             mount point recreated in the tmpfs and populated the same way.
 *             Never writable (refused by the parser).
 *
 * A method that fails leaves nothing mounted and the next is tried; the one
 * used is reported as a status record `status/1 info INDEX overlay METHOD
 * [tried: ...]`. When every method fails the op fails (EXL_MOUNT).
 */
#include "launch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATHBUF (2 * PLAN_MAX_PATH + 64)

static size_t ovl_escape(char *out, size_t n, const char *s)
{
  size_t o = 0;
  for (; *s && o + 2 < n; s++) {
    if (*s == ',' || *s == ':' || *s == '\\') out[o++] = '\\';
    out[o++] = *s;
  }
  out[o] = '\0';
  return o;
}

/* 1 when the op needs a mount point (or directory) at its dst; *dir says which kind. */
static int op_target_kind(const struct mount_op *o, int *dir)
{
  struct stat st;
  switch (o->kind) {
  case OP_BIND:
    if (stat(o->src, &st) != 0) return !o->optional; /* a skipped optional bind needs no mount point */
    *dir = S_ISDIR(st.st_mode);
    return 1;
  case OP_FILE:
    *dir = 0;
    return 1;
  case OP_TMPFS:
  case OP_PROC:
  case OP_MKDIR:
  case OP_OVERLAY:
    *dir = 1;
    return 1;
  default:
    return 0;
  }
}

/*
 * Make the mount points of later ops under the overlay's dst creatable. In a
 * user namespace that maps only the caller, the image's directories belong
 * to an unmapped owner, so nobody may create entries in them, not even
 * through the overlay. Missing targets are therefore created in the upper
 * directory before the overlay is mounted: intermediate directories that
 * exist below keep their mode, a missing final component becomes a
 * directory (or an empty file for file binds). A path that crosses a
 * non-directory below is left alone (the op itself then reports it).
 */
static void prepare_upper(const struct plan *p, size_t idx, const char *upper, const struct rootfs_state *rs)
{
  const char *base = p->mounts[idx].dst;
  size_t blen = strcmp(base, "/") == 0 ? 0 : strlen(base);
  for (size_t n = idx + 1; n < p->nmounts; n++) {
    const struct mount_op *o = &p->mounts[n];
    int dir = 1;
    if (!op_target_kind(o, &dir)) continue;
    if (strncmp(o->dst, base, blen) != 0 || (o->dst[blen] != '/' && o->dst[blen] != '\0')) continue;
    const char *rel = o->dst + blen; /* "" or "/a/b" */
    char low[2 * PLAN_MAX_PATH + 32], up[2 * PLAN_MAX_PATH + 64];
    for (const char *c = rel; *c;) {
      const char *e = strchr(c + 1, '/');
      size_t plen = e ? (size_t)(e - rel) : strlen(rel);
      int last = e == NULL;
      snprintf(low, sizeof low, "%s%s%.*s", rs->newroot, blen ? base : "", (int)plen, rel);
      snprintf(up, sizeof up, "%s%.*s", upper, (int)plen, rel);
      struct stat st;
      if (lstat(low, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) break;
        if (mkdir(up, st.st_mode & 07777) != 0 && errno != EEXIST) fail((int)idx, "overlay", errno, EXL_MOUNT, "prepare %s", up);
      } else {
        if (last && !dir) {
          int fd = open(up, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
          if (fd < 0) fail((int)idx, "overlay", errno, EXL_MOUNT, "prepare %s", up);
          close(fd);
        } else if (mkdir(up, 0755) != 0 && errno != EEXIST) {
          fail((int)idx, "overlay", errno, EXL_MOUNT, "prepare %s", up);
        }
      }
      if (last) break;
      c = e;
    }
  }
}

/* ---- skeleton ---- */

/* dst of a later op that needs a mount point, relative to base (blen chars), or NULL */
static const char *later_rel(const struct plan *p, size_t n, const char *base, size_t blen)
{
  const struct mount_op *o = &p->mounts[n];
  int dir = 1;
  if (!op_target_kind(o, &dir)) return NULL;
  if (strncmp(o->dst, base, blen) != 0 || (o->dst[blen] != '/' && o->dst[blen] != '\0')) return NULL;
  return o->dst + blen;
}

/* Does a later op need a path below `rel` (a directory of the lower) that the lower lacks? */
static int missing_below(const struct plan *p, size_t idx, const char *lower, const char *rel)
{
  const char *base = p->mounts[idx].dst;
  size_t blen = strcmp(base, "/") == 0 ? 0 : strlen(base), rlen = strlen(rel);
  char low[PATHBUF];
  for (size_t n = idx + 1; n < p->nmounts; n++) {
    const char *r = later_rel(p, n, base, blen);
    if (!r || strncmp(r, rel, rlen) != 0 || r[rlen] != '/') continue;
    for (const char *c = r + rlen; *c;) {
      const char *e = strchr(c + 1, '/');
      size_t plen = e ? (size_t)(e - r) : strlen(r);
      snprintf(low, sizeof low, "%s%.*s", lower, (int)plen, r);
      struct stat st;
      if (lstat(low, &st) != 0) return 1;
      if (!S_ISDIR(st.st_mode) || !e) break; /* present, or crosses a non-directory: nothing to make */
      c = e;
    }
  }
  return 0;
}

/* Create, in the skeleton, the mount points of later ops whose next component below `rel` the lower lacks. */
static void make_missing(const struct plan *p, size_t idx, const char *lower, const char *tgt, const char *rel)
{
  const struct mount_op *base_op = &p->mounts[idx];
  size_t blen = strcmp(base_op->dst, "/") == 0 ? 0 : strlen(base_op->dst), rlen = strlen(rel);
  char path[PATHBUF];
  for (size_t n = idx + 1; n < p->nmounts; n++) {
    const char *r = later_rel(p, n, base_op->dst, blen);
    if (!r || strncmp(r, rel, rlen) != 0 || r[rlen] != '/') continue;
    const char *e = strchr(r + rlen + 1, '/');
    size_t plen = e ? (size_t)(e - r) : strlen(r);
    struct stat st;
    snprintf(path, sizeof path, "%s%.*s", lower, (int)plen, r);
    if (lstat(path, &st) == 0) continue;
    int dir = 1;
    op_target_kind(&p->mounts[n], &dir);
    for (const char *c = r + rlen; *c;) {
      e = strchr(c + 1, '/');
      plen = e ? (size_t)(e - r) : strlen(r);
      snprintf(path, sizeof path, "%s%.*s", tgt, (int)plen, r);
      int rc;
      if (!e && !dir) {
        rc = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (rc >= 0) rc = close(rc);
      } else {
        rc = mkdir(path, 0755);
      }
      if (rc != 0 && errno != EEXIST) fail((int)idx, "overlay", errno, EXL_MOUNT, "skeleton: create %s", path);
      if (!e) break;
      c = e;
    }
  }
}

/* Fill directory `tgt`+`rel` of the skeleton with the entries of `lower`+`rel`. */
static void skel_dir(const struct plan *p, size_t idx, const char *lower, const char *tgt, const char *rel)
{
  int i = (int)idx;
  char *ldir = malloc(3 * PATHBUF), *l = ldir + PATHBUF, *t = ldir + 2 * PATHBUF;
  if (!ldir) fail(i, "overlay", ENOMEM, EXL_INTERNAL, "skeleton");
  snprintf(ldir, PATHBUF, "%s%s", lower, rel);
  DIR *d = opendir(ldir);
  if (!d) fail(i, "overlay", errno, EXL_MOUNT, "skeleton: read %s", ldir);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *nm = de->d_name;
    if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
    size_t rl = strlen(rel);
    if (rl + strlen(nm) + 2 > PLAN_MAX_PATH) continue; /* no op can name it */
    char sub[PATHBUF];
    snprintf(sub, sizeof sub, "%s/%s", rel, nm);
    snprintf(l, PATHBUF, "%s%s", lower, sub);
    snprintf(t, PATHBUF, "%s%s", tgt, sub);
    struct stat st;
    if (lstat(l, &st) != 0) fail(i, "overlay", errno, EXL_MOUNT, "skeleton: stat %s", l);
    int rc;
    if (S_ISDIR(st.st_mode)) {
      if (mkdir(t, 0700) != 0) fail(i, "overlay", errno, EXL_MOUNT, "skeleton: mkdir %s", t);
      if (missing_below(p, idx, lower, sub)) {
        skel_dir(p, idx, lower, tgt, sub); /* its buffers are its own: `t` still names this entry */
        rc = chmod(t, st.st_mode & 07777);
      } else {
        rc = mount(l, t, NULL, MS_BIND | MS_REC, NULL);
      }
    } else if (S_ISLNK(st.st_mode)) {
      char link[PLAN_MAX_PATH + 1];
      ssize_t n = readlink(l, link, sizeof link - 1);
      if (n < 0) fail(i, "overlay", errno, EXL_MOUNT, "skeleton: readlink %s", l);
      link[n] = '\0';
      rc = symlink(link, t);
    } else {
      rc = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (rc >= 0) rc = close(rc);
      if (rc == 0) rc = mount(l, t, NULL, MS_BIND, NULL);
    }
    if (rc != 0) fail(i, "overlay", errno, EXL_MOUNT, "skeleton: place %s", t);
  }
  closedir(d);
  make_missing(p, idx, lower, tgt, rel);
  free(ldir);
}

/* scratch/ovlN/lower: the image as it is now, then a tmpfs on dst populated from it. */
static int ovl_skeleton(const struct plan *p, size_t idx, const char *target, const struct rootfs_state *rs)
{
  int i = (int)idx;
  char lower[PLAN_MAX_PATH + 64], opts[32], tgt[64];
  struct stat st;
  snprintf(lower, sizeof lower, "%s/ovl%d", rs->scratch, i);
  if (mkdir(lower, 0700) != 0 && errno != EEXIST) return errno;
  snprintf(lower, sizeof lower, "%s/ovl%d/lower", rs->scratch, i);
  if (mkdir(lower, 0700) != 0 || mount(target, lower, NULL, MS_BIND | MS_REC, NULL) != 0 || stat(lower, &st) != 0)
    return errno;
  snprintf(opts, sizeof opts, "mode=%o", st.st_mode & 07777);
  if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) return errno;
  int fd = resolve_target(rs, p->mounts[idx].dst, 0, tgt, sizeof tgt);
  if (fd < 0) fail(i, "overlay", errno, EXL_MOUNT, "skeleton: reopen %s", p->mounts[idx].dst);
  chmod(tgt, 0700); /* populated as the owner; the image's mode is restored below */
  skel_dir(p, idx, lower, tgt, "");
  chmod(tgt, st.st_mode & 07777);
  close(fd);
  return 0;
}

/* scratch/ovlN/{upper,work}; the upper holds the mount points later ops need */
static void make_upper(const struct plan *p, size_t idx, const char *target, const struct rootfs_state *rs, char *up,
                       char *wk, size_t n)
{
  int i = (int)idx;
  struct stat st;
  snprintf(up, n, "%s/ovl%d", rs->scratch, i);
  if (mkdir(up, 0700) != 0) fail(i, "overlay", errno, EXL_MOUNT, "create %s", up);
  snprintf(wk, n, "%s/ovl%d/work", rs->scratch, i);
  snprintf(up, n, "%s/ovl%d/upper", rs->scratch, i);
  if (stat(target, &st) != 0) fail(i, "overlay", errno, EXL_MOUNT, "overlay target %s", p->mounts[idx].dst);
  if (mkdir(up, st.st_mode & 07777) != 0 || mkdir(wk, 0700) != 0) fail(i, "overlay", errno, EXL_MOUNT, "create %s", up);
  prepare_upper(p, idx, up, rs);
}

static int ovl_kernel(const char *target, const char *up, const char *wk)
{
  char opts[8 * PLAN_MAX_PATH + 128], el[2 * PLAN_MAX_PATH + 8], eu[2 * PLAN_MAX_PATH + 100], ew[2 * PLAN_MAX_PATH + 100];
  ovl_escape(el, sizeof el, target);
  ovl_escape(eu, sizeof eu, up);
  ovl_escape(ew, sizeof ew, wk);
  snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s,userxattr", el, eu, ew);
  return mount("overlay", target, "overlay", 0, opts) == 0 ? 0 : errno;
}

void op_overlay(const struct plan *p, size_t idx, const char *target, const struct rootfs_state *rs)
{
  static const char *names[] = {"kernel", "fuse", "skeleton"};
  const struct mount_op *o = &p->mounts[idx];
  char up[PLAN_MAX_PATH + 48], wk[PLAN_MAX_PATH + 48], tried[512] = "", why[600] = "";
  size_t tl = 0;
  int have_upper = 0, err = 0;
  for (size_t m = 0; m < o->nmethods; m++) {
    enum ovl_method k = o->methods[m];
    if (k != OVL_SKELETON && !have_upper) {
      make_upper(p, idx, target, rs, up, wk, sizeof up);
      have_upper = 1;
    }
    why[0] = '\0';
    err = k == OVL_KERNEL ? ovl_kernel(target, up, wk)
        : k == OVL_FUSE   ? ovl_fuse(p, idx, target, rs, why, sizeof why)
                          : ovl_skeleton(p, idx, target, rs);
    if (err == 0) {
      report_info((int)idx, "overlay", "%s%s%s", names[k], tl ? " tried:" : "", tried);
      return;
    }
    if (tl < sizeof tried - 1)
      tl += (size_t)snprintf(tried + tl, sizeof tried - tl, " %s(%s%s%s)", names[k], strerror(err), why[0] ? ": " : "",
                             why);
    if (tl >= sizeof tried) tl = sizeof tried - 1;
  }
  fail((int)idx, "overlay", err, EXL_MOUNT, "no overlay method worked on %s:%s", o->dst, tried);
}
