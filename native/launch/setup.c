/*
 * Namespaces, the image root and the switch to the new root (the mount
 * ops are in ops.c).
 * Every failure ends in fail() with the step (or op index) and errno.
 *
 * Layout inside the private mount namespace: a tmpfs is mounted on the
 * plan's `stage` directory; STAGE/root becomes "/" (a bind of the squashfuse
 * mount point or of the rootfs directory), STAGE/scratch holds what the
 * helper makes itself (generated files, overlay upper/work dirs, the FUSE
 * server's log). Both vanish with the namespace: after pivot_root the old
 * root, STAGE included, is detached.
 */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


static void write_file(const char *path, const char *text, const char *step, int ignore_enoent)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && ignore_enoent && errno == ENOENT) return;
  if (fd < 0) fail(-1, step, errno, EXL_NS, "open %s", path);
  size_t n = strlen(text);
  if (write(fd, text, n) != (ssize_t)n) fail(-1, step, errno, EXL_NS, "write '%.40s' to %s", text, path);
  close(fd);
}

void setup_namespaces(const struct plan *p)
{
  setup_userns(p, 0);
}

/* slave = 1 (the warm keeper, warm.c): the host's later mounts and unmounts still reach the
 * namespace (a less privileged copy starts with slaves of the host's shared mounts), so the
 * launches that join it later see the host as it is then; their own copy is made private. */
void setup_userns(const struct plan *p, int slave)
{
  char buf[64];
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
    fail(-1, "unshare", errno, EXL_NS, "unshare(CLONE_NEWUSER|CLONE_NEWNS)");
  write_file("/proc/self/setgroups", "deny", "setgroups", 1);
  snprintf(buf, sizeof buf, "%u %u 1\n", p->uid_in, p->uid_out);
  write_file("/proc/self/uid_map", buf, "uid_map", 0);
  snprintf(buf, sizeof buf, "%u %u 1\n", p->gid_in, p->gid_out);
  write_file("/proc/self/gid_map", buf, "gid_map", 0);
  if (mount(NULL, "/", NULL, MS_REC | (slave ? MS_SLAVE : MS_PRIVATE), NULL) != 0)
    fail(-1, "private", errno, EXL_NS, "make every mount private");
}

static int mkdir_p(const char *path, mode_t mode)
{
  char tmp[PLAN_MAX_PATH + 16];
  if (strlen(path) >= sizeof tmp) return errno = ENAMETOOLONG, -1;
  strcpy(tmp, path);
  for (char *c = tmp + 1;; c++) {
    if (*c == '/' || *c == '\0') {
      char save = *c;
      *c = '\0';
      if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
      if (save == '\0') break;
      *c = save;
    }
  }
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) return errno = ENOTDIR, -1;
  return 0;
}

/*
 * The image root. The helper opens /dev/fuse and mounts the FUSE file system
 * itself (it holds CAP_SYS_ADMIN in the new user namespace; the FUSE server
 * it execs as the mapped user would not), then starts the server in the
 * foreground on the open device: `HELPER -f -o offset=N IMAGE /dev/fd/K`
 * (libfuse >= 3.3 takes a pre-mounted device as /dev/fd/K). Readiness: the
 * first stat() of the mount point is answered only after the server read
 * the image and handled FUSE_INIT; if the server exits first the device
 * closes and stat() fails with ENOTCONN. The server's stderr goes to
 * SCRATCH/fuse.log and is quoted in the error.
 */
static void fuse_failed(const struct plan *p, struct rootfs_state *rs, int logfd, int e, const char *what)
{
  char msg[512] = "";
  int st = 0;
  struct timespec ts = {0, 1000000};
  for (int i = 0; i < 200 && rs->fuse_pid > 0; i++) { /* give the server 200 ms to finish its message */
    if (waitpid(rs->fuse_pid, &st, WNOHANG) == rs->fuse_pid) rs->fuse_pid = 0;
    else nanosleep(&ts, NULL);
  }
  stop_fuse(rs);
  ssize_t n = pread(logfd, msg, sizeof msg - 1, 0);
  msg[n > 0 ? n : 0] = '\0';
  fail(-1, "fuse", e, EXL_ROOTFS, "%s %s %s: %s", p->fuse_helper, what, p->image, msg[0] ? msg : "no output");
}

/* Readiness watchdog: a server that never answers FUSE_INIT is killed, so
 * the blocked stat() returns (the connection aborts) after FUSE_READY_S. */
#define FUSE_READY_S 10
static volatile pid_t g_watch_pid;
static volatile sig_atomic_t g_watch_fired;
static void on_alarm(int sig)
{
  (void)sig;
  g_watch_fired = 1;
  if (g_watch_pid > 0) kill(g_watch_pid, SIGKILL);
}

static void start_fuse(const struct plan *p, struct rootfs_state *rs)
{
  char log[PLAN_MAX_PATH + 32];
  int fd = open(p->image, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(-1, "image", errno, EXL_ROOTFS, "open image %s", p->image);
  close(fd);
  struct stat pre;
  rs->made_mountpoint = lstat(p->mountpoint, &pre) != 0;
  if (mkdir_p(p->mountpoint, 0700) != 0) fail(-1, "rootfs", errno, EXL_ROOTFS, "create mount point %s", p->mountpoint);
  snprintf(log, sizeof log, "%s/fuse.log", rs->scratch);
  int logfd = open(log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (logfd < 0) fail(-1, "fuse", errno, EXL_ROOTFS, "create %s", log);
  fuse_mount_at(p, rs, p->mountpoint, p->image, logfd);
  close(logfd);
}

void fuse_mount_at(const struct plan *p, struct rootfs_state *rs, const char *target, const char *image_arg, int logfd)
{
  char opt[64], mopts[160], devfd[32];
  if (access(p->fuse_helper, X_OK) != 0)
    fail(-1, "fuse-helper", errno, EXL_ROOTFS, "FUSE server %s cannot be executed", p->fuse_helper);
  int dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (dev < 0) fail(-1, "fuse-device", errno, EXL_ROOTFS, "open /dev/fuse");
  snprintf(mopts, sizeof mopts, "fd=%d,rootmode=40000,user_id=%u,group_id=%u,default_permissions", dev, p->uid_in,
           p->gid_in);
  const char *base = strrchr(p->fuse_helper, '/') + 1;
  char fstype[64];
  snprintf(fstype, sizeof fstype, "fuse.%.50s", base);
  if (mount(p->image, target, fstype, MS_NOSUID | MS_NODEV | MS_RDONLY, mopts) != 0)
    fail(-1, "fuse-mount", errno, EXL_ROOTFS, "mount FUSE on %s", target);
  rs->fuse_mounted = 1;
  snprintf(opt, sizeof opt, "offset=%llu", (unsigned long long)p->offset);
  snprintf(devfd, sizeof devfd, "/dev/fd/%d", dev);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) fail(-1, "fork", errno, EXL_INTERNAL, "fork the FUSE server");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    fcntl(dev, F_SETFD, 0);
    execl(p->fuse_helper, p->fuse_helper, "-f", "-o", opt, image_arg, devfd, (char *)NULL);
    dprintf(2, "exec %s: %s\n", p->fuse_helper, strerror(errno));
    _exit(127);
  }
  rs->fuse_pid = pid;
  close(dev);
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, &old);
  g_watch_pid = pid;
  alarm(FUSE_READY_S);
  struct stat st;
  int r = stat(target, &st), e = errno;
  alarm(0);
  g_watch_pid = 0;
  sigaction(SIGALRM, &old, NULL);
  if (g_watch_fired) fuse_failed(p, rs, logfd, ETIMEDOUT, "did not answer within 10 s for");
  if (r != 0) fuse_failed(p, rs, logfd, e, "did not serve");
}

void setup_stage_and_root(const struct plan *p, struct rootfs_state *rs)
{
  struct stat pre;
  rs->made_stage = lstat(p->stage, &pre) != 0;
  if (mkdir_p(p->stage, 0700) != 0) fail(-1, "stage", errno, EXL_ROOTFS, "create stage %s", p->stage);
  if (mount("tmpfs", p->stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0)
    fail(-1, "stage", errno, EXL_ROOTFS, "mount a tmpfs on stage %s", p->stage);
  rs->stage_mounted = 1;
  snprintf(rs->newroot, sizeof rs->newroot, "%s/root", p->stage);
  snprintf(rs->scratch, sizeof rs->scratch, "%s/scratch", p->stage);
  if (mkdir(rs->newroot, 0755) != 0 || mkdir(rs->scratch, 0700) != 0)
    fail(-1, "stage", errno, EXL_ROOTFS, "populate stage %s", p->stage);
  const char *src = p->rootdir;
  char wroot[32];
  if (rs->warm_root >= 0) { /* the warm mount joined (warm.c) */
    snprintf(wroot, sizeof wroot, "/proc/self/fd/%d", rs->warm_root);
    src = wroot;
  } else if (p->rootfs_fuse) {
    start_fuse(p, rs);
    src = p->mountpoint;
  } else {
    struct stat st;
    if (stat(src, &st) != 0) fail(-1, "rootfs", errno, EXL_ROOTFS, "root directory %s", src);
    if (!S_ISDIR(st.st_mode)) fail(-1, "rootfs", ENOTDIR, EXL_ROOTFS, "root %s is not a directory", src);
  }
  if (mount(src, rs->newroot, NULL, MS_BIND | MS_REC, NULL) != 0)
    fail(-1, "rootfs", errno, EXL_ROOTFS, "bind %s to %s", src, rs->newroot);
}

void enter_root(const struct plan *p, const struct rootfs_state *rs)
{
  if (chdir(rs->newroot) != 0) fail(-1, "pivot_root", errno, EXL_ROOT, "chdir %s", rs->newroot);
  if (syscall(SYS_pivot_root, ".", ".") != 0) fail(-1, "pivot_root", errno, EXL_ROOT, "pivot_root into %s", rs->newroot);
  if (umount2(".", MNT_DETACH) != 0) fail(-1, "pivot_root", errno, EXL_ROOT, "detach the old root");
  if (chdir("/") != 0) fail(-1, "pivot_root", errno, EXL_ROOT, "chdir /");
  if (chdir(p->cwd) != 0) fail(-1, "chdir", errno, EXL_ROOT, "working directory %s in the container", p->cwd);
}

void drop_capabilities(void)
{
  for (unsigned long cap = 0; cap < 64; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;
      fail(-1, "caps", errno, EXL_ROOT, "drop capability %lu from the bounding set", cap);
    }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capset, &h, d) != 0) fail(-1, "caps", errno, EXL_ROOT, "clear capabilities");
}

/* In the helper's (outer) mount namespace after the container ended or
 * setup failed: stop the FUSE server, detach the mounts, remove the stage
 * and mount point directories the helper created (leaves only). */
void cleanup_host(const struct plan *p, struct rootfs_state *rs)
{
  stop_overlay_servers(rs);
  stop_fuse(rs);
  if (rs->fuse_mounted && umount2(p->mountpoint, MNT_DETACH) == 0) rs->fuse_mounted = 0;
  if (rs->stage_mounted && umount2(p->stage, MNT_DETACH) == 0) rs->stage_mounted = 0;
  if (p->rootfs_fuse && rs->made_mountpoint && !rs->fuse_mounted) rmdir(p->mountpoint);
  if (rs->made_stage && !rs->stage_mounted) rmdir(p->stage);
}

void stop_fuse(struct rootfs_state *rs)
{
  if (rs->fuse_pid <= 0) return;
  kill(rs->fuse_pid, SIGTERM);
  struct timespec ts = {0, 1000000};
  for (int i = 0; i < 1000; i++) {
    if (waitpid(rs->fuse_pid, NULL, WNOHANG) == rs->fuse_pid) {
      rs->fuse_pid = 0;
      return;
    }
    nanosleep(&ts, NULL);
  }
  kill(rs->fuse_pid, SIGKILL);
  waitpid(rs->fuse_pid, NULL, 0);
  rs->fuse_pid = 0;
}
