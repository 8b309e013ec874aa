/*
 * The `fuse` overlay method (see overlay.c): the container process mounts
 * /dev/fuse on the target and hands the device to the helper process, which
 * runs fuse-overlayfs on it as its own child. Messages on the SOCK_SEQPACKET
 * pair made by main.c before the fork (container -> helper):
 *
 *   "S INDEX" + the /dev/fuse fd (SCM_RIGHTS)   start a server for op INDEX
 *   "R INDEX"                                   op INDEX is served (stop the watchdog)
 *   end of file                                 no more requests (mount ops done, or exec)
 *
 * The server gets lowerdir=STAGE/root (the bare image in the helper's mount
 * namespace), upperdir/workdir=SCRATCH/ovlN/{upper,work} and `noacl`
 * (without it fuse-overlayfs fails every look-up in a lower layer whose
 * getxattr says EOPNOTSUPP, as squashfuse_ll's does), its output in
 * SCRATCH/ovlN/fuse.log (quoted when it fails). A server that has not answered
 * within OVL_READY_S is killed, which aborts the connection, so the waiting
 * stat() in the container returns ENOTCONN and the next method is tried.
 */
#include "launch.h"

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

#define OVL_READY_S 10

int plan_has_fuse_overlay(const struct plan *p)
{
  for (size_t n = 0; n < p->nmounts; n++)
    for (size_t m = 0; p->mounts[n].kind == OP_OVERLAY && m < p->mounts[n].nmethods; m++)
      if (p->mounts[n].methods[m] == OVL_FUSE) return 1;
  return 0;
}

static int send_msg(int sock, char what, size_t idx, int fd)
{
  char msg[32];
  int len = snprintf(msg, sizeof msg, "%c %zu", what, idx);
  return fdpass_send(sock, msg, (size_t)len, &fd, fd >= 0 ? 1 : 0);
}

/* 0 at end of file, else the message length; *fd gets a passed descriptor (else -1) */
static ssize_t recv_msg(int sock, char *msg, size_t n, int *fd)
{
  int nfds, truncated;
  ssize_t r = fdpass_recv(sock, msg, n, fd, 1, &nfds, &truncated);
  if (r >= 0 && nfds != 1) *fd = -1; /* a message with more descriptors than one passes none */
  return r;
}

/* Container side: mount, ask for a server, wait until it answers. 0 or an errno (`why` says more). */
int ovl_fuse(const struct plan *p, size_t idx, const char *target, const struct rootfs_state *rs, char *why, size_t n)
{
  const struct mount_op *o = &p->mounts[idx];
  char mopts[160], top[64], log[PLAN_MAX_PATH + 64];
  if (rs->ovl_sock < 0) return snprintf(why, n, "no channel to the helper"), EINVAL;
  if (strcmp(o->dst, "/") != 0) return snprintf(why, n, "fuse-overlayfs serves only an overlay on /"), EINVAL;
  if (strpbrk(rs->newroot, ",:\\") || strpbrk(rs->scratch, ",:\\"))
    return snprintf(why, n, "the stage path holds ',', ':' or '\\'"), EINVAL;
  if (access(o->ovl_helper, X_OK) != 0) {
    int e = errno;
    snprintf(why, n, "%s cannot be executed", o->ovl_helper);
    return e;
  }
  int dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (dev < 0) return snprintf(why, n, "open /dev/fuse"), errno;
  snprintf(mopts, sizeof mopts, "fd=%d,rootmode=40000,user_id=%u,group_id=%u,default_permissions", dev, p->uid_in,
           p->gid_in);
  if (mount("fuse-overlayfs", target, "fuse.fuse-overlayfs", MS_NOSUID | MS_NODEV, mopts) != 0) {
    int e = errno;
    close(dev);
    return snprintf(why, n, "mount FUSE"), e;
  }
  int sent = send_msg(rs->ovl_sock, 'S', idx, dev), e = errno;
  close(dev); /* from now on only the server holds the device: if it ends, the connection aborts */
  struct stat st;
  int fd = sent == 0 ? resolve_target(rs, o->dst, 0, top, sizeof top) : -1;
  if (sent != 0) snprintf(why, n, "ask the helper for a server");
  else if (fd < 0 || stat(top, &st) != 0) {
    e = errno;
    snprintf(log, sizeof log, "%s/ovl%zu/fuse.log", rs->scratch, idx);
    int lf = open(log, O_RDONLY | O_CLOEXEC);
    ssize_t r = lf >= 0 ? read(lf, why, n - 1) : -1;
    why[r > 0 ? r : 0] = '\0';
    for (char *c = why; *c; c++)
      if (*c == '\n') *c = ' ';
    if (lf >= 0) close(lf);
  } else {
    close(fd);
    send_msg(rs->ovl_sock, 'R', idx, -1);
    return 0;
  }
  if (fd >= 0) close(fd);
  umount2(target, MNT_DETACH);
  return e ? e : EIO;
}

static pid_t start_server(const struct plan *p, const struct rootfs_state *rs, size_t idx, int dev)
{
  char opts[3 * PLAN_MAX_PATH + 128], log[PLAN_MAX_PATH + 64], devfd[32];
  snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s/ovl%zu/upper,workdir=%s/ovl%zu/work,noacl", rs->newroot, rs->scratch,
           idx, rs->scratch, idx);
  snprintf(log, sizeof log, "%s/ovl%zu/fuse.log", rs->scratch, idx);
  snprintf(devfd, sizeof devfd, "/dev/fd/%d", dev);
  const char *helper = p->mounts[idx].ovl_helper;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  int nul = open("/dev/null", O_RDONLY), lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (nul >= 0) dup2(nul, 0);
  if (lf >= 0) dup2(lf, 1), dup2(lf, 2);
  fcntl(dev, F_SETFD, 0);
  execl(helper, helper, "-f", "-o", opts, devfd, (char *)NULL);
  dprintf(2, "exec %s: %s\n", helper, strerror(errno));
  _exit(127);
}

/* Helper side, between the fork of the container process and supervise(). */
void serve_overlays(const struct plan *p, struct rootfs_state *rs)
{
  int pending = -1;
  while (rs->ovl_sock >= 0) {
    struct pollfd pf = {rs->ovl_sock, POLLIN, 0};
    int r = poll(&pf, 1, pending >= 0 ? OVL_READY_S * 1000 : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) { /* the server did not answer: end it, the container falls back */
      if (rs->ovl_pid[pending] > 0) kill(rs->ovl_pid[pending], SIGKILL);
      pending = -1;
      continue;
    }
    char msg[32];
    int fd;
    if (r < 0 || recv_msg(rs->ovl_sock, msg, sizeof msg, &fd) <= 0) break;
    char *end;
    unsigned long idx = strtoul(msg + 2, &end, 10);
    int ok = (msg[0] == 'S' || msg[0] == 'R') && msg[1] == ' ' && *end == '\0' && idx < p->nmounts &&
             p->mounts[idx].kind == OP_OVERLAY;
    if (ok && msg[0] == 'R') pending = -1;
    if (ok && msg[0] == 'S' && fd >= 0) {
      int slot = 0;
      while (slot < OVL_MAX_FUSE && rs->ovl_pid[slot] > 0) slot++;
      pid_t pid = slot < OVL_MAX_FUSE ? start_server(p, rs, idx, fd) : -1;
      if (pid > 0) rs->ovl_pid[slot] = pid, pending = slot;
    }
    if (fd >= 0) close(fd); /* without a server the container's stat() sees ENOTCONN */
  }
  if (rs->ovl_sock >= 0) close(rs->ovl_sock);
  rs->ovl_sock = -1;
}

void forget_child(struct rootfs_state *rs, pid_t pid)
{
  if (!rs) return;
  if (pid == rs->fuse_pid) rs->fuse_pid = 0;
  for (int k = 0; k < OVL_MAX_FUSE; k++)
    if (rs->ovl_pid[k] == pid) rs->ovl_pid[k] = 0;
}

void stop_overlay_servers(struct rootfs_state *rs)
{
  for (int k = 0; k < OVL_MAX_FUSE; k++) {
    pid_t pid = rs->ovl_pid[k];
    if (pid <= 0) continue;
    kill(pid, SIGTERM);
    int done = 0;
    for (int i = 0; i < 1000 && !done; i++) {
      if (waitpid(pid, NULL, WNOHANG) == pid) done = 1;
      else usleep(1000);
    }
    if (!done) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
    }
    rs->ovl_pid[k] = 0;
  }
}
