/*
 * Warm mounts: launches of one image by one user on one node share a
 * squashfuse mount held by a small keeper process, instead of mounting the
 * image afresh each time (the kernel's page cache of the mount stays warm).
 * TypeScript decides (the plan's warm fields: the rendezvous directory, the
 * key, the idle time, the image identity, src/runtime/builder/warm.ts); this
 * file executes. Design and threat model: docs/launcher.md, "Warm mounts".
 *
 * Rendezvous: the plan's warm-dir, a directory of the caller's (created 0700
 * when missing, opened O_NOFOLLOW, refused unless owned by the caller with
 * no group or other bits). In it, per keeper, NAME.sock (its unix socket)
 * and NAME.json (what `hpcc cache list --type mounts` shows), NAME being
 * KEY-CG: the plan's key and the FNV-64 of the helper's /proc/self/cgroup,
 * so a keeper serves only launches of its own cgroup (a Slurm step's
 * cleanup, which kills the keeper with the step, can never pull a mount from
 * under another step's containers).
 *
 * Join: connect (SO_PEERCRED: the keeper runs as the caller), ask 'J'; the
 * keeper answers "warm/1 ok IDENTITY UID GID" with its user namespace, its
 * mount namespace and the root of its mount as SCM_RIGHTS fds. Only when
 * the identity and the id mapping are the plan's: setns into both, chdir to
 * the root, unshare(CLONE_NEWNS) for a private copy (the working directory
 * moves into the copy) and make it private; setup.c then binds that root as
 * it would bind its own squashfuse mount. The connection stays open in the
 * helper while the container runs: it is how the keeper counts its users
 * (closed by the kernel however the helper ends).
 *
 * Start: with no keeper to connect to, under an flock of the directory (so
 * that concurrent first launches start one keeper), stale sockets are
 * removed and the helper forks the keeper (double fork: it is not the
 * helper's child, stays in the helper's cgroup, gets a session of its own
 * and /dev/null as stdio), which binds the socket, makes its namespaces
 * (mounts slaves of the host's, so later joins see today's host mounts),
 * mounts squashfuse over the rendezvous directory (its own namespace only)
 * serving the image file it opened and checked, and says "ready".
 *
 * Keeper's end: no user for warm-idle seconds; the image's identity
 * changed (checked every second and before each join: it stops accepting at
 * once and ends when its users have gone); 'Q' (hpcc cache clean --type
 * mounts: as a change); SIGTERM, SIGINT, SIGHUP; its FUSE server's death.
 * The mount exists only in its namespaces and squashfuse dies with it
 * (PR_SET_PDEATHSIG), so a SIGKILL leaves at most the two files, which the
 * next keeper start in the directory removes.
 * Any problem before the helper enters the keeper's namespaces makes the
 * launch go on as without a warm mount (an info record says why), unless
 * the plan requires the warm mount (--sharens: every launch of the step on
 * this node in the keeper's user namespace); then the launch fails.
 */
#include "launch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARM_PROTO "warm/1"
#define FUSE_MAGIC 0x65735546
#define WARM_MAX_USERS 1024
#define WARM_WAIT_MS 30000

/* The identity the plan's warm-id names: dev:ino:size:mtime_ns:ctime_ns:offset */
static int image_identity(const struct plan *p, int fd, char *out, size_t n)
{
  struct stat st;
  if ((fd >= 0 ? fstat(fd, &st) : stat(p->image, &st)) != 0) return -1;
  snprintf(out, n, "%llu:%llu:%lld:%lld:%lld:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
           (long long)st.st_size, (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
           (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec, (unsigned long long)p->offset);
  return 0;
}

static int same_image(const struct plan *p, int fd)
{
  char id[256];
  return image_identity(p, fd, id, sizeof id) == 0 && !strcmp(id, p->warm_id);
}

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
  for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ULL;
  return h;
}

/*
 * The slurmstepd this launch runs under: the nearest ancestor of that name,
 * its pid and start time (clock ticks since boot: a pid alone may be reused);
 * -1 when there is none.
 */
static int stepd_find(pid_t *out, unsigned long long *start)
{
  pid_t pid = getppid();
  for (int hop = 0; hop < 64 && pid > 1; hop++) {
    char f[64], buf[1024];
    snprintf(f, sizeof f, "/proc/%d/stat", (int)pid);
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) return -1;
    buf[r] = '\0';
    char *open_p = strchr(buf, '('), *close_p = strrchr(buf, ')');
    if (!open_p || !close_p || close_p < open_p) return -1;
    int ppid;
    char state;
    if (sscanf(close_p + 1, " %c %d", &state, &ppid) != 2) return -1;
    if ((size_t)(close_p - open_p - 1) == strlen("slurmstepd") && !strncmp(open_p + 1, "slurmstepd", 10)) {
      /* field 22, starttime: the 20th after the ")" */
      char *t = close_p + 1;
      for (int k = 0; k < 19 && t; k++) t = strchr(t + 1, ' ');
      if (!t || sscanf(t, " %llu", start) != 1) return -1;
      *out = pid;
      return 0;
    }
    pid = ppid;
  }
  return -1;
}

/*
 * KEY-CG: the plan's key and the FNV-64 of this process's cgroup memberships,
 * of its mount namespace and of the slurmstepd it runs under (stepd_find). The cgroup keeps a keeper inside the Slurm step
 * that started it; a trailing per-task level (cgroup v2 task/cgroup: .../
 * step_N/user/task_M) is left out, so the ranks of a step share one keeper
 * (--sharens) and that keeper still dies with the step. The mount namespace:
 * a launch's binds resolve in the keeper's view of the host, so only launches
 * from the same view share it.
 */
static void keeper_name(const struct plan *p, char *out, size_t n)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  char buf[8192];
  size_t len = 0;
  int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  ssize_t r;
  while (fd >= 0 && len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
  if (fd >= 0) close(fd);
  buf[len] = '\0';
  for (char *line = buf; *line;) {
    char *nl = strchr(line, '\n');
    size_t ln = nl ? (size_t)(nl - line) : strlen(line);
    char *slash = memrchr(line, '/', ln); /* a last level task_<digits>: left out */
    if (slash) {
      size_t tail = (size_t)(line + ln - slash - 1);
      if (tail > 5 && !strncmp(slash + 1, "task_", 5) && strspn(slash + 6, "0123456789") == tail - 5) ln = (size_t)(slash - line);
    }
    h = fnv(h, line, ln);
    h = fnv(h, "\n", 1);
    if (!nl) break;
    line = nl + 1;
  }
  struct stat st;
  if (stat("/proc/self/ns/mnt", &st) == 0) {
    h = fnv(h, &st.st_dev, sizeof st.st_dev);
    h = fnv(h, &st.st_ino, sizeof st.st_ino);
  }
  /* the Slurm step: a keeper ends with its slurmstepd, so only that step's launches may join it
     (without task/cgroup the cgroup is the same for every step, and a step running beside it
     lost its mount when the first one ended) */
  pid_t sp;
  unsigned long long start;
  if (stepd_find(&sp, &start) == 0) {
    h = fnv(h, &sp, sizeof sp);
    h = fnv(h, &start, sizeof start);
  }
  snprintf(out, n, "%s-%016llx", p->warm_key, (unsigned long long)h);
}

/* The rendezvous directory, created 0700 when missing; -1 (and why) unless it is the caller's own. */
static int open_rendezvous(const struct plan *p, char *why, size_t n)
{
  mode_t old = umask(077);
  if (mkdir(p->warm_dir, 0700) != 0 && errno != EEXIST) {
    snprintf(why, n, "create %s: %s", p->warm_dir, strerror(errno));
    umask(old);
    return -1;
  }
  umask(old);
  int dfd = open(p->warm_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    snprintf(why, n, "open %s: %s", p->warm_dir, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(dfd, &st) != 0 || st.st_uid != getuid() || (st.st_mode & 077)) {
    snprintf(why, n, "%s is not a directory of uid %u that only its owner may use (mode %04o, owner %u)", p->warm_dir,
             (unsigned)getuid(), (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
    close(dfd);
    return -1;
  }
  return dfd;
}

static int sock_addr(int dfd, const char *name, struct sockaddr_un *sa)
{
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  int k = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s.sock", dfd, name);
  return k > 0 && (size_t)k < sizeof sa->sun_path ? 0 : -1;
}

static int try_connect(int dfd, const char *name)
{
  struct sockaddr_un sa;
  if (sock_addr(dfd, name, &sa) != 0) return errno = ENAMETOOLONG, -1;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(s);
    return errno = e, -1;
  }
  return s;
}

/* Remove the files of keepers that are gone (their socket refuses connections). */
static void sweep_stale(int dfd)
{
  int d2 = dup(dfd);
  DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
  if (!d) {
    if (d2 >= 0) close(d2);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 6 || n > 100 || strcmp(e->d_name + n - 5, ".sock") || strspn(e->d_name, "0123456789abcdef-") != n - 5) continue;
    char name[128], json[160];
    snprintf(name, sizeof name, "%.*s", (int)(n - 5), e->d_name);
    int s = try_connect(dfd, name);
    if (s >= 0) {
      close(s);
      continue;
    }
    if (errno != ECONNREFUSED) continue;
    unlinkat(dfd, e->d_name, 0);
    snprintf(json, sizeof json, "%s.json", name);
    unlinkat(dfd, json, 0);
  }
  closedir(d);
}

/* ---- the keeper ---- */

static void json_str(FILE *f, const char *s)
{
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static void write_meta(const struct plan *p, int dfd, const char *name)
{
  char tmp[160], fin[160];
  snprintf(tmp, sizeof tmp, "%s.json.tmp", name);
  snprintf(fin, sizeof fin, "%s.json", name);
  int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    if (fd >= 0) close(fd);
    return;
  }
  fprintf(f, "{\"format\":\"%s\",\"pid\":%ld,\"started\":%lld,\"idle\":%llu,\"uid\":%u,\"gid\":%u,\"image\":", WARM_PROTO,
          (long)getpid(), (long long)time(NULL), (unsigned long long)p->warm_idle, p->uid_in, p->gid_in);
  json_str(f, p->image);
  fprintf(f, ",\"identity\":");
  json_str(f, p->warm_id);
  fprintf(f, ",\"socket\":\"%s.sock\"}\n", name);
  if (fclose(f) == 0) renameat(dfd, tmp, dfd, fin);
  else unlinkat(dfd, tmp, 0);
}

struct keeper {
  const struct plan *p;
  int dfd, lsock, sigfd;
  int stepd; /* pidfd of the Slurm step's slurmstepd this keeper ends with, or -1 */
  char name[128];
  ino_t sock_ino;
  int fds[3]; /* user ns, mount ns, root */
  int users[WARM_MAX_USERS];
  size_t nusers;
  long long idle_since, started;
  int stale;
  struct rootfs_state rs;
};

/* No new joins: close the socket and remove it (when it is still ours) and the metadata. */
static void stop_listening(struct keeper *k)
{
  if (k->lsock < 0) return;
  close(k->lsock);
  k->lsock = -1;
  char f[160];
  struct stat st;
  snprintf(f, sizeof f, "%s.sock", k->name);
  if (fstatat(k->dfd, f, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == k->sock_ino) unlinkat(k->dfd, f, 0);
  snprintf(f, sizeof f, "%s.json", k->name);
  unlinkat(k->dfd, f, 0);
}

static void reply(int c, const char *text, const int *fds, int nfds)
{
  fdpass_send(c, text, strlen(text), fds, nfds);
}

static void serve_one(struct keeper *k)
{
  int c = accept4(k->lsock, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return;
  struct ucred cr;
  socklen_t len = sizeof cr;
  /* the peer's uid as this user namespace sees it: the caller's own id is uid_in, anyone else's is unmapped */
  if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.uid != k->p->uid_in) {
    close(c);
    return;
  }
  struct pollfd pf = {c, POLLIN, 0};
  char req = 0;
  if (poll(&pf, 1, 2000) != 1 || recv(c, &req, 1, 0) != 1) {
    close(c);
    return;
  }
  char msg[512];
  if (req == 'J') {
    if (!same_image(k->p, -1)) {
      k->stale = 1;
      stop_listening(k);
      reply(c, WARM_PROTO " no the image changed\n", NULL, 0);
    } else if (k->nusers >= WARM_MAX_USERS) {
      reply(c, WARM_PROTO " no too many users\n", NULL, 0);
    } else {
      snprintf(msg, sizeof msg, WARM_PROTO " ok %s %u %u\n", k->p->warm_id, k->p->uid_in, k->p->gid_in);
      reply(c, msg, k->fds, 3);
      k->users[k->nusers++] = c;
      return;
    }
  } else if (req == 'S') {
    long long now = now_ms();
    snprintf(msg, sizeof msg, WARM_PROTO " status %ld %lld %zu %lld %d\n", (long)getpid(), (now - k->started) / 1000,
             k->nusers, k->nusers ? 0 : (now - k->idle_since) / 1000, k->stale);
    reply(c, msg, NULL, 0);
  } else if (req == 'Q') {
    k->stale = 1;
    stop_listening(k);
    reply(c, WARM_PROTO " stopping\n", NULL, 0);
  }
  close(c);
}

static _Noreturn void keeper_exit(struct keeper *k, int code)
{
  stop_listening(k);
  umount2(k->p->warm_dir, MNT_DETACH);
  stop_fuse(&k->rs);
  _exit(code);
}

static void keeper_loop(struct keeper *k)
{
  long long last_check = now_ms();
  k->idle_since = k->started = last_check;
  for (;;) {
    long long now = now_ms(), idle_ms = (long long)k->p->warm_idle * 1000;
    if (k->nusers == 0 && (k->stale || now - k->idle_since >= idle_ms)) return;
    long long wait = 1000;
    if (k->nusers == 0 && idle_ms - (now - k->idle_since) < wait) wait = idle_ms - (now - k->idle_since);
    struct pollfd pf[3 + WARM_MAX_USERS];
    pf[0] = (struct pollfd){k->lsock, POLLIN, 0}; /* fd -1 (stopped listening) is skipped by poll */
    pf[1] = (struct pollfd){k->sigfd, POLLIN, 0};
    pf[2] = (struct pollfd){k->stepd, POLLIN, 0}; /* readable once the step's slurmstepd has ended */
    for (size_t i = 0; i < k->nusers; i++) pf[3 + i] = (struct pollfd){k->users[i], POLLIN, 0};
    int r = poll(pf, 3 + k->nusers, (int)(wait < 0 ? 0 : wait));
    if (r < 0 && errno != EINTR) return;
    if (r > 0 && pf[2].revents) return; /* the Slurm step is over: its processes are being killed */
    if (r > 0 && pf[1].revents) {
      struct signalfd_siginfo si;
      if (read(k->sigfd, &si, sizeof si) == (ssize_t)sizeof si && si.ssi_signo != SIGCHLD) return;
      if (k->rs.fuse_pid > 0 && waitpid(k->rs.fuse_pid, NULL, WNOHANG) == k->rs.fuse_pid) {
        k->rs.fuse_pid = 0; /* the FUSE server died: the mount is dead */
        k->stale = 1;
        stop_listening(k);
      }
    }
    for (size_t i = r > 0 ? k->nusers : 0; i-- > 0;) { /* a user's helper ended (or wrote): it is gone */
      if (!pf[3 + i].revents) continue;
      char b[64];
      if (recv(k->users[i], b, sizeof b, MSG_DONTWAIT) > 0) continue;
      close(k->users[i]);
      k->users[i] = k->users[--k->nusers];
      if (k->nusers == 0) k->idle_since = now_ms();
    }
    now = now_ms();
    if (now - last_check >= 1000) {
      last_check = now;
      if (!k->stale && !same_image(k->p, -1)) {
        k->stale = 1;
        stop_listening(k);
      }
    }
    if (r > 0 && k->lsock >= 0 && pf[0].revents) serve_one(k);
  }
}

/* Keep `fd` as descriptor `to` (both numbers below the ones closed afterwards). */
static void move_fd(int *fd, int to)
{
  if (*fd == to) return;
  if (dup3(*fd, to, O_CLOEXEC) < 0) _exit(EXL_INTERNAL);
  close(*fd);
  *fd = to;
}

static _Noreturn void keeper_main(const struct plan *p, int dfd, const char *name, int ready, int stepd)
{
  struct keeper k;
  memset(&k, 0, sizeof k);
  k.p = p;
  k.rs.warm_root = k.rs.warm_sock = k.rs.ovl_sock = -1;
  snprintf(k.name, sizeof k.name, "%s", name);
  prctl(PR_SET_NAME, "hpcc-keeper");
  g_status_fd = -1; /* failures go to stderr, which is /dev/null: the helper learns from the missing "ready" */
  setsid();
  umask(077);
  signal(SIGPIPE, SIG_IGN);
  int nul = open("/dev/null", O_RDWR);
  if (nul < 0) _exit(EXL_INTERNAL);
  dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
  if (nul > 2) close(nul);
  /* a new open file description of the directory: the helper's flock is not the keeper's to hold */
  int d2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int hi_d = d2 < 0 ? -1 : fcntl(d2, F_DUPFD_CLOEXEC, 64), hi_r = fcntl(ready, F_DUPFD_CLOEXEC, 64);
  if (hi_d < 0 || hi_r < 0) _exit(EXL_INTERNAL);
  close(d2);
  int hi_s = stepd < 0 ? -1 : fcntl(stepd, F_DUPFD_CLOEXEC, 64);
  move_fd(&hi_d, 3);
  move_fd(&hi_r, 4);
  if (hi_s >= 0) move_fd(&hi_s, 5);
  if (syscall(SYS_close_range, 6U, ~0U, 0U) != 0)
    for (int fd = 6; fd < 65536; fd++) close(fd);
  k.dfd = 3;
  k.stepd = hi_s;
  int img = open(p->image, O_RDONLY); /* squashfuse reads this file: the one checked here */
  if (img < 0 || !same_image(p, img)) _exit(EXL_ROOTFS);
  struct sockaddr_un sa;
  k.lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (k.lsock < 0 || sock_addr(k.dfd, k.name, &sa) != 0 || bind(k.lsock, (struct sockaddr *)&sa, sizeof sa) != 0)
    _exit(EXL_INTERNAL);
  struct stat st;
  char f[160];
  snprintf(f, sizeof f, "%s.sock", k.name);
  if (fstatat(k.dfd, f, &st, AT_SYMLINK_NOFOLLOW) != 0 || listen(k.lsock, 256) != 0) _exit(EXL_INTERNAL);
  k.sock_ino = st.st_ino;
  /* from here on a failure removes the socket again */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM), sigaddset(&set, SIGINT), sigaddset(&set, SIGHUP), sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_SETMASK, &set, NULL);
  pid_t fork_check = fork(); /* the rest in a child whose failure the parent cleans up after */
  if (fork_check < 0) {
    stop_listening(&k);
    _exit(EXL_INTERNAL);
  }
  if (fork_check > 0) {
    int wst = 0;
    close(k.lsock);
    close(4); /* the helper waits for "ready" from the keeper proper only */
    while (waitpid(fork_check, &wst, 0) < 0 && errno == EINTR) {
    }
    /* the keeper proper ended: its socket and metadata are gone unless it died by a signal */
    if (fstatat(k.dfd, f, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == k.sock_ino) unlinkat(k.dfd, f, 0);
    snprintf(f, sizeof f, "%s.json", k.name);
    unlinkat(k.dfd, f, 0);
    _exit(0);
  }
  /* The keeper proper (its parent above only waits, so a SIGKILL of either leaves files the next start sweeps). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  k.sigfd = signalfd(-1, &set, SFD_CLOEXEC);
  setup_userns(p, 1);
  int logfd = memfd_create("fuse.log", MFD_CLOEXEC);
  if (logfd < 0) _exit(EXL_INTERNAL);
  char imgarg[32];
  snprintf(imgarg, sizeof imgarg, "/dev/fd/%d", img);
  fuse_mount_at(p, &k.rs, p->warm_dir, imgarg, logfd);
  close(logfd);
  close(img); /* the server has its copy */
  k.fds[0] = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
  k.fds[1] = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  k.fds[2] = open(p->warm_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct statfs sf;
  if (k.fds[0] < 0 || k.fds[1] < 0 || k.fds[2] < 0 || fstatfs(k.fds[2], &sf) != 0 || sf.f_type != FUSE_MAGIC)
    keeper_exit(&k, EXL_ROOTFS);
  write_meta(p, k.dfd, k.name);
  if (write(4, "1", 1) != 1) keeper_exit(&k, EXL_INTERNAL);
  close(4);
  keeper_loop(&k);
  keeper_exit(&k, 0);
}

/* Fork the keeper (double fork) and wait for its "ready"; 0 when it serves. */
/*
 * A pidfd of the slurmstepd this launch runs under (stepd_find), or -1: the
 * keeper ends with it. A keeper leaves its launch's process tree (double
 * fork, own session), which Slurm's proctrack/linuxproc and pgid follow; with
 * proctrack/cgroup the step's cgroup kills it anyway.
 */
static int stepd_pidfd(void)
{
  pid_t pid;
  unsigned long long start;
  return stepd_find(&pid, &start) == 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
}

static int spawn_keeper(const struct plan *p, int dfd, const char *name, char *why, size_t n)
{
  int pp[2];
  if (pipe2(pp, O_CLOEXEC) != 0) return snprintf(why, n, "pipe: %s", strerror(errno)), -1;
  int stepd = stepd_pidfd();
  pid_t k1 = fork();
  if (k1 < 0) {
    close(pp[0]), close(pp[1]);
    if (stepd >= 0) close(stepd);
    return snprintf(why, n, "fork the keeper: %s", strerror(errno)), -1;
  }
  if (k1 == 0) {
    close(pp[0]);
    pid_t k2 = fork();
    if (k2 != 0) _exit(k2 < 0);
    keeper_main(p, dfd, name, pp[1], stepd);
  }
  if (stepd >= 0) close(stepd);
  close(pp[1]);
  while (waitpid(k1, NULL, 0) < 0 && errno == EINTR) {
  }
  struct pollfd pf = {pp[0], POLLIN, 0};
  char c = 0;
  int ok = poll(&pf, 1, WARM_WAIT_MS) == 1 && read(pp[0], &c, 1) == 1 && c == '1';
  close(pp[0]);
  if (!ok) snprintf(why, n, "the keeper did not start (the launch mounts the image itself)");
  return ok ? 0 : -1;
}

/* Ask the keeper on `s` to join; on success the helper is in its namespaces (a private mount copy). */
static int join_over(const struct plan *p, struct rootfs_state *rs, int s, char *why, size_t n)
{
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.uid != getuid())
    return snprintf(why, n, "the keeper's socket belongs to uid %u, not to the caller", (unsigned)cr.uid), -1;
  if (send(s, "J", 1, MSG_NOSIGNAL) != 1) return snprintf(why, n, "ask the keeper: %s", strerror(errno)), -1;
  struct pollfd pf = {s, POLLIN, 0};
  if (poll(&pf, 1, WARM_WAIT_MS) != 1) return snprintf(why, n, "the keeper did not answer"), -1;
  char buf[512];
  int fds[3], nf, truncated;
  ssize_t r = fdpass_recv(s, buf, sizeof buf, fds, 3, &nf, &truncated);
  if (r <= 0) return snprintf(why, n, "the keeper closed the connection"), -1;
  char want[512];
  snprintf(want, sizeof want, WARM_PROTO " ok %s %u %u\n", p->warm_id, p->uid_in, p->gid_in);
  struct statfs sf;
  int bad = strcmp(buf, want) != 0 || nf != 3 || truncated || fstatfs(fds[2], &sf) != 0 ||
            sf.f_type != FUSE_MAGIC;
  if (bad) {
    for (int i = 0; i < 3; i++)
      if (fds[i] >= 0) close(fds[i]);
    size_t l = strlen(buf);
    while (l && buf[l - 1] == '\n') buf[--l] = '\0';
    return snprintf(why, n, "the keeper's answer is not for this plan: %.200s", buf), -1;
  }
  /* no way back from here: a failure ends the launch */
  if (setns(fds[0], CLONE_NEWUSER) != 0) fail(-1, "warm", errno, EXL_NS, "join the warm mount's user namespace");
  if (setns(fds[1], CLONE_NEWNS) != 0) fail(-1, "warm", errno, EXL_NS, "join the warm mount's mount namespace");
  if (fchdir(fds[2]) != 0) fail(-1, "warm", errno, EXL_NS, "enter the warm mount");
  if (unshare(CLONE_NEWNS) != 0) fail(-1, "warm", errno, EXL_NS, "unshare(CLONE_NEWNS) from the warm mount's namespace");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail(-1, "private", errno, EXL_NS, "make every mount private");
  rs->warm_root = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rs->warm_root < 0 || chdir("/") != 0) fail(-1, "warm", errno, EXL_NS, "open the warm mount's root");
  for (int i = 0; i < 3; i++) close(fds[i]);
  rs->warm_sock = s;
  return 0;
}

/*
 * 0 when this process may make a user namespace, else the errno of trying (in a
 * child): --sharens failing on a node without user namespaces is then reported
 * as that, not as a --sharens failure.
 */
static int userns_errno(void)
{
  pid_t c = fork();
  if (c < 0) return 0;
  if (c == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : (errno > 0 && errno < 256 ? errno : EPERM));
  int st = 0;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 0;
}

/* No warm mount: go on without one, or end the launch when the plan requires it (--sharens). */
static int no_warm(const struct plan *p, const char *why)
{
  if (p->warm_required) {
    /* a node without user namespaces: say that (its keeper did not start, or another rank's did not) */
    int e = userns_errno();
    if (e) fail(-1, "unshare", e, EXL_NS, "unshare(CLONE_NEWUSER) for --sharens");
    fail(-1, "sharens", 0, EXL_NS, "--sharens: cannot join the shared namespace: %s", why);
  }
  report_info(-1, "warm", "no warm mount: %s", why);
  return 0;
}

int warm_join(const struct plan *p, struct rootfs_state *rs)
{
  char why[600] = "", name[128];
  if (!p->warm_dir || !p->rootfs_fuse) return 0;
  if (!same_image(p, -1)) {
    snprintf(why, sizeof why, "%s is not the image the plan was made for", p->image);
    return no_warm(p, why);
  }
  int dfd = open_rendezvous(p, why, sizeof why);
  if (dfd < 0) return no_warm(p, why);
  keeper_name(p, name, sizeof name);
  int s = try_connect(dfd, name), locked = 0;
  if (s < 0) {
    long long t0 = now_ms();
    while (!(locked = flock(dfd, LOCK_EX | LOCK_NB) == 0) && now_ms() - t0 < WARM_WAIT_MS) {
      struct timespec ts = {0, 5000000};
      nanosleep(&ts, NULL);
    }
    if (!locked) snprintf(why, sizeof why, "%s stayed locked", p->warm_dir);
    else if ((s = try_connect(dfd, name)) < 0) {
      sweep_stale(dfd);
      char f[160];
      snprintf(f, sizeof f, "%s.sock", name);
      unlinkat(dfd, f, 0);
      if (spawn_keeper(p, dfd, name, why, sizeof why) == 0 && (s = try_connect(dfd, name)) < 0)
        snprintf(why, sizeof why, "connect to the new keeper: %s", strerror(errno));
    }
  }
  int joined = s >= 0 && join_over(p, rs, s, why, sizeof why) == 0;
  if (locked) flock(dfd, LOCK_UN);
  close(dfd);
  if (!joined) {
    if (s >= 0) close(s);
    return no_warm(p, why);
  }
  return 1;
}
