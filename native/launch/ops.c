/*
 * The mount ops of a plan, run in the container's own mount namespace
 * before pivot_root. Every destination is a container path: it is resolved
 * under the new root (resolve.c: openat2 RESOLVE_IN_ROOT, or the helper's
 * own walk on kernels without openat2), so a symlink in the image (even an
 * absolute one, or "..") never leads onto the host's root, and the mount
 * goes onto the resolved object through its /proc/self/fd/N path.
 *
 * What the helper may change: it creates missing mount points (and the
 * plan's mkdir directories) only inside a layer this launch made itself,
 * the overlay over the image or a tmpfs of the plan: the parent directory
 * must be on one of those mounts (its st_dev, recorded when each was
 * mounted), never on a host bind, even when an image symlink resolves
 * into one. It never changes the mode or owner of anything that exists.
 */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#define HPCC_MOUNT_ATTR_RDONLY 0x00000001ULL
struct hpcc_mount_attr { /* struct mount_attr of linux/mount.h (which clashes with sys/mount.h) */
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* the devices of the layers this launch mounted (overlay, tmpfs ops): the only places it creates in */
static dev_t g_owned[PLAN_MAX_MOUNTS + 1];
static size_t g_nowned;

/* what a refused creation (EXDEV) adds to the failure message */
#define NOT_OWNED(e) ((e) == EXDEV ? " (refusing to create it outside the layers this launch made: the path leads onto a host bind or the read-only image, e.g. through a symlink of the image)" : "")

static int owned_dev(dev_t d)
{
  for (size_t i = 0; i < g_nowned; i++)
    if (g_owned[i] == d) return 1;
  return 0;
}

/* O_PATH fd of container path `dst` under the new root, or -1 (errno). */
static int root_open(const struct rootfs_state *rs, const char *dst)
{
  int rfd = open(rs->newroot, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) return -1;
  int fd = resolve_in_root(rfd, dst);
  int e = errno;
  close(rfd);
  errno = e;
  return fd;
}

/* Record the mount now at `dst` (just mounted by this launch) as a layer the helper may create in. */
static void own_layer_at(int i, const char *step, const struct rootfs_state *rs, const char *dst)
{
  struct stat st;
  int fd = root_open(rs, dst);
  if (fd < 0 || fstat(fd, &st) != 0) fail(i, step, errno, EXL_MOUNT, "reopen %s after mounting it", dst);
  close(fd);
  if (!owned_dev(st.st_dev) && g_nowned < sizeof g_owned / sizeof g_owned[0]) g_owned[g_nowned++] = st.st_dev;
}

/*
 * Resolve `dst` for mounting: writes "/proc/self/fd/N" to `out` and returns
 * N (the caller closes it), or -1 with errno. A missing final component is
 * created first when `create` is 1 (a directory of `mode`) or 2 (an empty
 * file, 0644), inside the parent as resolved under the root, and only when
 * that parent lies in a layer of this launch (else EXDEV: the path leads onto
 * a host bind or the read-only image).
 */
static int target_fd_mode(const struct rootfs_state *rs, const char *dst, int create, unsigned mode, char *out,
                          size_t n)
{
  int fd = root_open(rs, dst);
  if (fd < 0 && errno == ENOENT && create) {
    char parent[PLAN_MAX_PATH + 1];
    const char *slash = strrchr(dst, '/');
    size_t plen = slash == dst ? 1 : (size_t)(slash - dst);
    memcpy(parent, dst, plen);
    parent[plen] = '\0';
    int pfd = root_open(rs, parent);
    if (pfd < 0) return -1;
    struct stat pst;
    int bad = fstat(pfd, &pst) != 0 ? errno : !owned_dev(pst.st_dev) ? EXDEV : 0;
    if (bad) {
      close(pfd);
      return errno = bad, -1;
    }
    int r;
    if (create == 1) {
      r = mkdirat(pfd, slash + 1, mode);
    } else {
      r = openat(pfd, slash + 1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (r >= 0) r = close(r);
    }
    int e = errno;
    if (r == 0) fd = openat(pfd, slash + 1, O_PATH | O_NOFOLLOW | O_CLOEXEC); /* what was just made */
    else if (e == EEXIST) fd = root_open(rs, dst); /* made meanwhile, or a dangling symlink (fails again) */
    else errno = e;
    e = errno;
    close(pfd);
    errno = e;
  }
  if (fd >= 0) snprintf(out, n, "/proc/self/fd/%d", fd);
  return fd;
}

static int target_fd(const struct rootfs_state *rs, const char *dst, int create, char *out, size_t n)
{
  return target_fd_mode(rs, dst, create, 0755, out, n);
}

/* Read-only: mount_setattr (recursive) where the kernel has it; else a
 * bind remount keeping the flags the kernel locks in a user namespace. */
static int make_ro(const char *path, int recursive)
{
  struct hpcc_mount_attr a = {HPCC_MOUNT_ATTR_RDONLY, 0, 0, 0};
  if (syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof a) == 0) return 0;
  if (errno != ENOSYS) return -1;
  struct statvfs sv;
  if (statvfs(path, &sv) != 0) return -1;
  unsigned long keep = sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME | ST_NODIRATIME | ST_RELATIME);
  return mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL);
}

static void op_file(int i, const struct mount_op *o, const struct rootfs_state *rs)
{
  char target[64];
  char tmp[PLAN_MAX_PATH + 32];
  snprintf(tmp, sizeof tmp, "%s/file%d", rs->scratch, i);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail(i, "file", errno, EXL_MOUNT, "create %s", tmp);
  for (size_t off = 0; off < o->content_len;) {
    ssize_t w = write(fd, o->content + off, o->content_len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail(i, "file", errno, EXL_MOUNT, "write %s", tmp);
    off += (size_t)w;
  }
  if (fchmod(fd, o->mode) != 0) fail(i, "file", errno, EXL_MOUNT, "chmod %s", tmp);
  close(fd);
  int tfd = target_fd(rs, o->dst, 2, target, sizeof target);
  if (tfd < 0) fail(i, "file", errno, EXL_MOUNT, "create mount point %s%s", o->dst, NOT_OWNED(errno));
  if (mount(tmp, target, NULL, MS_BIND, NULL) != 0) fail(i, "file", errno, EXL_MOUNT, "bind onto %s", o->dst);
  close(tfd);
  /* the bind read-only: remount the new mount itself, a fresh resolution reaches it */
  if ((tfd = target_fd(rs, o->dst, 0, target, sizeof target)) < 0 || make_ro(target, 0) != 0)
    fail(i, "file", errno, EXL_MOUNT, "make %s read-only", o->dst);
  close(tfd);
}

int resolve_target(const struct rootfs_state *rs, const char *dst, int create, char *out, size_t n)
{
  return target_fd(rs, dst, create, out, n);
}

/* make the mount now at `dst` read-only; -1 with errno on failure */
int ro_at_path(const struct rootfs_state *rs, const char *dst, int recursive)
{
  char target[64];
  int fd = target_fd(rs, dst, 0, target, sizeof target);
  if (fd < 0) return -1;
  int r = make_ro(target, recursive), e = errno;
  close(fd);
  errno = e;
  return r;
}

/* make the mount now at `dst` read-only */
static void ro_at(int i, const char *step, const struct rootfs_state *rs, const char *dst, int recursive)
{
  char target[64];
  int fd = target_fd(rs, dst, 0, target, sizeof target);
  if (fd < 0 || make_ro(target, recursive) != 0) fail(i, step, errno, EXL_MOUNT, "make %s read-only", dst);
  close(fd);
}

uint64_t run_mount_ops(const struct plan *p, const struct rootfs_state *rs)
{
  char target[64], opts[64];
  uint64_t ovl = 0, t;
  for (size_t n = 0; n < p->nmounts; n++) {
    const struct mount_op *o = &p->mounts[n];
    int i = (int)n, fd = -1;
    const char *step = op_name(o->kind);
    switch (o->kind) {
    case OP_BIND: {
      struct stat st;
      if (stat(o->src, &st) != 0) {
        if (o->optional && (errno == ENOENT || errno == ENOTDIR)) break;
        fail(i, step, errno, EXL_MOUNT, "bind source %s", o->src);
      }
      if ((fd = target_fd(rs, o->dst, S_ISDIR(st.st_mode) ? 1 : 2, target, sizeof target)) < 0)
        fail(i, step, errno, EXL_MOUNT, "mount point %s for %s%s", o->dst, o->src, NOT_OWNED(errno));
      if (mount(o->src, target, NULL, MS_BIND | MS_REC, NULL) != 0)
        fail(i, step, errno, EXL_MOUNT, "bind %s to %s", o->src, o->dst);
      if (o->readonly) ro_at(i, step, rs, o->dst, 1);
      break;
    }
    case OP_TMPFS:
      if (o->size)
        snprintf(opts, sizeof opts, "mode=%o,size=%llu", o->mode, (unsigned long long)o->size);
      else
        snprintf(opts, sizeof opts, "mode=%o", o->mode);
      if ((fd = target_fd(rs, o->dst, 1, target, sizeof target)) < 0)
        fail(i, step, errno, EXL_MOUNT, "mount point %s%s", o->dst, NOT_OWNED(errno));
      if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        fail(i, step, errno, EXL_MOUNT, "mount tmpfs on %s", o->dst);
      close(fd);
      fd = -1;
      own_layer_at(i, step, rs, o->dst);
      break;
    case OP_PROC:
      if ((fd = target_fd(rs, o->dst, 1, target, sizeof target)) < 0)
        fail(i, step, errno, EXL_MOUNT, "mount point %s%s", o->dst, NOT_OWNED(errno));
      if (p->pidns ? mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)
                   : mount("/proc", target, NULL, MS_BIND | MS_REC, NULL))
        fail(i, step, errno, EXL_MOUNT, "%s on %s", p->pidns ? "mount proc" : "bind /proc", o->dst);
      break;
    case OP_MKDIR: {
      /* made with the op's mode when missing; an existing directory is left as it is */
      struct stat st;
      if ((fd = target_fd_mode(rs, o->dst, 1, o->mode, target, sizeof target)) < 0)
        fail(i, step, errno, EXL_MOUNT, "mkdir %s%s", o->dst, NOT_OWNED(errno));
      if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) fail(i, step, ENOTDIR, EXL_MOUNT, "mkdir %s", o->dst);
      break;
    }
    case OP_FILE:
      op_file(i, o, rs);
      break;
    case OP_OVERLAY:
      if ((fd = target_fd(rs, o->dst, 0, target, sizeof target)) < 0)
        fail(i, step, errno, EXL_MOUNT, "overlay target %s", o->dst);
      t = mono_ns();
      op_overlay(p, n, target, rs);
      ovl += mono_ns() - t;
      close(fd);
      fd = -1;
      own_layer_at(i, step, rs, o->dst);
      break;
    case OP_REMOUNT_RO:
      /* this mount only: binds made below it keep their own mode */
      ro_at(i, step, rs, o->dst, 0);
      break;
    }
    if (fd >= 0) close(fd);
  }
  /* overlays that are not `writable` become read-only once every op ran */
  for (size_t n = 0; n < p->nmounts; n++) {
    const struct mount_op *o = &p->mounts[n];
    if (o->kind == OP_OVERLAY && !o->writable) ro_at((int)n, "overlay-ro", rs, o->dst, 0);
  }
  return ovl;
}
