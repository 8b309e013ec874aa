/*
 * hpcc-launch: run one container launch plan (see launch.h for exit codes,
 * plan.c for the wire format, status.c for status records).
 *
 * Usage:
 *   hpcc-launch (--plan FILE | --plan-fd N) [--status-fd N] [--die-with-parent] [--host-env] [--report-phases]
 *               [--fallback N ARG0 ... ARGN-1] [--] [CMD ARGS...]
 *   hpcc-launch --version
 * CMD ARGS, when given, replace the plan's command: argv[command_index..]
 * (one saved plan, many commands). The prefix argv[0..command_index), the
 * env-script wrapper, is kept, so the image's env scripts and the injected
 * variables apply as in `hpcc exec`. Without --status-fd, failures are
 * printed to stderr.
 *
 * --report-phases: the helper's phases go to the status fd as info records
 * (status.c); hpcc exec --timings prints them.
 *
 * --fallback N ARGV... (the native front's memo replays, front.c): a setup
 * failure, one before the payload runs, does not end the launch. The helper
 * keeps the status records in a pipe of its own; when the container process
 * has ended (or the helper itself failed) and everything is undone, a failure
 * record among them makes it exec ARGV (the front, with the same arguments)
 * with HPCC_MEMO_RETRY=exec|setup: the front runs the launch through Node
 * without the memo, so the failure is reported with hpcc's error code and
 * hint, and its exit status is the launch's. Not with a PID namespace once
 * the container process existed: the record is printed as without --fallback.
 *
 * Process tree: the helper (H) sets up the namespaces and the root, starts
 * the FUSE server (F) when the root is a squashfuse image, then forks the
 * container child (C); while C runs the mount ops, H starts fuse-overlayfs
 * servers (O) on C's request (fuse-overlay.c). C runs the mount ops, pivot_roots, drops every
 * capability and execs the payload. With a PID namespace C is PID 1 of the
 * new namespace: it forks the payload (P, PID 2), forwards signals to it,
 * reaps orphans and exits with P's status. H forwards SIGTERM, SIGINT,
 * SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGCONT and SIGWINCH when they were
 * sent by a process (si_code <= 0); signals the kernel generates for the
 * terminal already reach the whole foreground process group, payload
 * included, and are not sent twice. No process group or session is
 * created, so the payload stays in the terminal's foreground group and
 * interactive shells work. When C has ended, H stops F and exits with C's
 * status: the exit code, or 128+N for a death by signal N.
 */
#include "launch.h"
#include "../envrule.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct plan g_plan;
static struct rootfs_state g_rs;
static uint64_t g_ops_end; /* --timings: when the container's mount ops ended */
static pid_t g_helper_pid;

/* --fallback: the argv to exec, the read end of the status records, the
 * helper's own pid and the container child's (0 until forked), and the
 * signal mask and umask the helper started with */
static char **g_fallback;
static pid_t g_main_pid, g_container;
static int g_status_rd = -1;
static sigset_t g_old_mask;
static mode_t g_umask;

void on_fail_cleanup(void)
{
  if (g_helper_pid && getpid() == g_helper_pid) cleanup_host(&g_plan, &g_rs);
}

static const int fwd_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGCONT, SIGWINCH};

static int parse_fd(const char *s)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < 0 || v > 1 << 20) fail(-1, "args", EINVAL, EXL_USAGE, "bad fd '%s'", s);
  return (int)v;
}

static void usage(void)
{
  fprintf(stderr, "usage: hpcc-launch (--plan FILE | --plan-fd N) [--status-fd N] [--die-with-parent] [--host-env] [--report-phases]\n"
                  "                   [--fallback N ARG0 ... ARGN-1] [--] [CMD ARGS...]\n"
                  "       hpcc-launch --version\n");
  _exit(EXL_USAGE);
}

static const char *env_get(char **env, const char *key)
{
  size_t n = strlen(key);
  for (; *env; env++)
    if (strncmp(*env, key, n) == 0 && (*env)[n] == '=') return *env + n + 1;
  return NULL;
}

static void try_exec(const char *path, char **argv, char **env)
{
  execve(path, argv, env);
  if (errno == ENOEXEC) { /* like execvpe: a script without #! runs under /bin/sh */
    size_t n = 0;
    while (argv[n]) n++;
    char **v = calloc(n + 2, sizeof *v);
    if (!v) return;
    v[0] = (char *)"/bin/sh";
    v[1] = (char *)path;
    for (size_t i = 1; i <= n; i++) v[i + 1] = argv[i];
    execve("/bin/sh", v, env);
    free(v);
    errno = ENOEXEC;
  }
}

/* execvpe with the plan's PATH (default /bin:/usr/bin); exit 127/126 on failure. */
static _Noreturn void exec_payload(const struct plan *p, const sigset_t *mask, mode_t um)
{
  const char *cmd = p->argv[0];
  report_timing("exec", mono_ns() - g_ops_end);
  sigprocmask(SIG_SETMASK, mask, NULL);
  umask(um);
  if (strchr(cmd, '/')) {
    try_exec(cmd, p->argv, p->env);
  } else {
    const char *path = env_get(p->env, "PATH");
    if (!path) path = "/bin:/usr/bin";
    int saw_eacces = 0, last = ENOENT;
    char buf[PLAN_MAX_PATH + 256];
    for (const char *s = path;;) {
      const char *e = strchr(s, ':');
      size_t n = e ? (size_t)(e - s) : strlen(s);
      if (n + strlen(cmd) + 2 < sizeof buf) {
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)n, n ? s : ".", "/", cmd);
        if (n == 0) snprintf(buf, sizeof buf, "./%s", cmd);
        try_exec(buf, p->argv, p->env);
        last = errno;
        if (errno == EACCES) saw_eacces = 1;
        else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG) break;
      }
      if (!e) break;
      s = e + 1;
    }
    errno = saw_eacces ? EACCES : last;
  }
  int e = errno;
  fail(-1, "exec", e, e == ENOENT || e == ENOTDIR ? EXL_NOTFOUND : EXL_NOEXEC, "execute '%s' in the container", cmd);
}

/*
 * --host-env: entries of the plan's environment that came from the host
 * (NAME=V, or __HPCC_HOST_NAME=V for the env-script wrapper) with a NAME
 * a launch memo keys by name only (envrule.h) take this process's value:
 * a memo's plan was built with the values of its first launch.
 */
static void take_host_env(struct plan *p)
{
  static const char hostp[] = "__HPCC_HOST_";
  for (size_t i = 0; i < p->nenv; i++) {
    const char *e = p->env[i], *eq = strchr(e, '=');
    if (!eq) continue;
    const char *name = e;
    if (!strncmp(e, hostp, sizeof hostp - 1)) name = e + sizeof hostp - 1;
    size_t n = (size_t)(eq - name);
    if (n == 0 || hpcc_env_keyed(name, n)) continue;
    char key[256];
    if (n >= sizeof key) continue;
    memcpy(key, name, n);
    key[n] = '\0';
    const char *v = getenv(key);
    if (!v) continue;
    size_t pre = (size_t)(eq - e) + 1;
    char *ne = malloc(pre + strlen(v) + 1);
    if (!ne) fail(-1, "args", ENOMEM, EXL_INTERNAL, "out of memory");
    memcpy(ne, e, pre);
    strcpy(ne + pre, v);
    p->env[i] = ne;
  }
}

/*
 * --plan FILE: the plan decides what is mounted where and what runs, so it
 * must be the caller's own: a regular file (opened with O_NOFOLLOW, so not a
 * symlink; O_NONBLOCK, so a FIFO cannot stall the open), owned by the
 * caller, writable by nobody else (no group or world write bit). Anything
 * else is refused with exit 97 and the step "plan-file".
 */
static int open_plan_file(const char *file, uid_t uid)
{
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0 && errno == ELOOP)
    fail(-1, "plan-file", ELOOP, EXL_PRIV, "refusing plan %s: it is a symbolic link (give the plan file itself)", file);
  if (fd < 0) fail(-1, "plan", errno, EXL_PLAN, "open plan %s", file);
  struct stat st;
  if (fstat(fd, &st) != 0) fail(-1, "plan", errno, EXL_PLAN, "stat plan %s", file);
  if (!S_ISREG(st.st_mode))
    fail(-1, "plan-file", EINVAL, EXL_PRIV, "refusing plan %s: not a regular file", file);
  if (st.st_uid != uid)
    fail(-1, "plan-file", EPERM, EXL_PRIV, "refusing plan %s: owned by uid %u, not by the caller (uid %u)", file,
         (unsigned)st.st_uid, (unsigned)uid);
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    fail(-1, "plan-file", EPERM, EXL_PRIV, "refusing plan %s: mode %04o lets others write it (chmod go-w)", file,
         (unsigned)(st.st_mode & 07777));
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

static int status_code(int st)
{
  return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : EXL_INTERNAL;
}

/* Wait for `child` with `set` blocked, forwarding signals sent by processes.
 * Returns the child's wait status. Other children are reaped (and
 * forgotten in `rs`: the FUSE servers). */
static int supervise(pid_t child, const sigset_t *set, struct rootfs_state *rs)
{
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(set, &si);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      if (si.si_code <= 0) kill(child, sig);
      continue;
    }
    int st;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
      if (w == child) return st;
      forget_child(rs, w);
    }
  }
}

/* The failure record `rec` as the helper prints it without a status fd; its exit status into *code. */
static void print_record(const char *rec, int *code)
{
  int index = -1, err = 0, off = 0;
  char step[64] = "setup";
  sscanf(rec, "status/1 fail %d %63s %d %d %n", &index, step, &err, code, &off);
  const char *msg = off > 0 ? rec + off : "";
  size_t len = strlen(msg);
  while (len > 0 && msg[len - 1] == '\n') len--;
  fprintf(stderr, "hpcc-launch: %s failed: %.*s%s%s\n", step, (int)len, msg, err ? ": " : "", err ? strerror(err) : "");
}

/* Exec the front again for the failure record `rec` (its status becomes the launch's). */
static _Noreturn void run_fallback(const char *rec)
{
  int index = -1, code = EXL_INTERNAL;
  char step[64] = "setup";
  sscanf(rec, "status/1 fail %d %63s", &index, step);
  sigprocmask(SIG_SETMASK, &g_old_mask, NULL);
  umask(g_umask);
  /* "exec": the memo is fine, the command is not; any other step: the memo may be stale */
  if (setenv("HPCC_MEMO_RETRY", strcmp(step, "exec") ? "setup" : "exec", 1) == 0) execv(g_fallback[0], g_fallback);
  print_record(rec, &code);
  _exit(code);
}

/*
 * --fallback: the status records go into a pipe whose both ends the helper
 * keeps (the write end non-blocking: a record that does not fit is dropped
 * rather than stopping the container). Without the pipe the launch goes on
 * without a fallback.
 */
static void open_status_pipe(void)
{
  int sp[2];
  if (pipe2(sp, O_CLOEXEC) != 0) return;
  fcntl(sp[0], F_SETFL, O_NONBLOCK);
  fcntl(sp[1], F_SETFL, O_NONBLOCK);
  g_status_fd = sp[1];
  g_status_rd = sp[0];
}

/* The failure record among the status records written so far, into `rec`; 0 when there is none. */
static int failure_record(char *rec, size_t cap)
{
  char buf[4096];
  size_t n = 0;
  int found = 0;
  for (;;) {
    ssize_t r = read(g_status_rd, buf + n, sizeof buf - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    char *nl;
    while ((nl = memchr(buf, '\n', n)) != NULL) {
      size_t len = (size_t)(nl + 1 - buf);
      if (!found && len < cap && !strncmp(buf, "status/1 fail ", 14)) {
        memcpy(rec, buf, len);
        rec[len] = '\0';
        found = 1;
      }
      memmove(buf, nl + 1, n - len);
      n -= len;
    }
    if (n == sizeof buf - 1) n = 0; /* an overlong line is not a record */
  }
  return found;
}

/*
 * The helper after a setup failure or the container's end (everything it
 * set up already undone): with a failure record, become the front again
 * (run_fallback execs it in this process, so its status is the launch's);
 * without one, return `code`. Nothing of this runs when the launch works.
 * The exec happens in the helper's namespaces when they were made: the
 * front, Node and a new helper work there as on the host (ids map to
 * themselves, the mounts are the host's, namespaces nest; a PID namespace
 * applies only to the helper's children, not to itself).
 */
static int hand_over(int code)
{
  char rec[1600];
  if (!failure_record(rec, sizeof rec)) return code;
  /* After unshare(CLONE_NEWPID) whose first child (the container) has ended, this process can
   * create no process or thread any more (Node would abort): print the record as before. */
  if (g_plan.pidns && g_container != 0) {
    print_record(rec, &code);
    return code;
  }
  run_fallback(rec);
}

_Noreturn void on_fail_exit(int code)
{
  /* the helper itself, before the container process exists */
  if (g_status_rd >= 0 && g_container == 0 && getpid() == g_main_pid) {
    close(g_status_fd);
    g_status_fd = -1;
    _exit(hand_over(code)); /* the record this process just wrote */
  }
  _exit(code);
}

int main(int argc, char **argv)
{
  uint64_t t_start = mono_ns();
  const char *plan_file = NULL;
  int plan_fd = -1, die_with_parent = 0, host_env = 0, i;
  uid_t ru, eu, su;
  gid_t rg, eg, sg;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--plan") && i + 1 < argc) plan_file = argv[++i];
    else if (!strcmp(a, "--plan-fd") && i + 1 < argc) plan_fd = parse_fd(argv[++i]);
    else if (!strcmp(a, "--status-fd") && i + 1 < argc) g_status_fd = parse_fd(argv[++i]);
    else if (!strcmp(a, "--die-with-parent")) die_with_parent = 1;
    else if (!strcmp(a, "--host-env")) host_env = 1;
    else if (!strcmp(a, "--report-phases")) g_timings = 1;
    else if (!strcmp(a, "--fallback") && i + 1 < argc) {
      int n = parse_fd(argv[++i]); /* a small count */
      if (n < 1 || n > argc - i - 1) usage();
      g_fallback = calloc((size_t)n + 1, sizeof *g_fallback);
      if (!g_fallback) fail(-1, "args", ENOMEM, EXL_INTERNAL, "out of memory");
      memcpy(g_fallback, argv + i + 1, (size_t)n * sizeof *g_fallback);
      i += n;
    }
    else if (!strcmp(a, "--version")) {
      printf("hpcc-launch plan-version %d\n", HPCC_PLAN_VERSION);
      return 0;
    } else if (!strcmp(a, "--")) {
      i++;
      break;
    } else if (a[0] == '-') usage();
    else break;
  }
  if (!plan_file == (plan_fd < 0)) usage();
  if (g_status_fd >= 0 && fcntl(g_status_fd, F_SETFD, FD_CLOEXEC) != 0)
    fail(-1, "args", errno, EXL_USAGE, "status fd %d", g_status_fd);

  if (getresuid(&ru, &eu, &su) || getresgid(&rg, &eg, &sg) || ru != eu || eu != su || rg != eg || eg != sg)
    fail(-1, "privileges", EPERM, EXL_PRIV, "refusing to run setuid or setgid");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(-1, "privileges", errno, EXL_PRIV, "PR_SET_NO_NEW_PRIVS");
  if (die_with_parent) {
    pid_t pp = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != pp) _exit(EXL_INTERNAL);
  }

  char err[512], *buf;
  size_t len;
  if (plan_file) plan_fd = open_plan_file(plan_file, ru);
  fcntl(plan_fd, F_SETFD, FD_CLOEXEC);
  if (plan_read_fd(plan_fd, &buf, &len, err, sizeof err) != 0) fail(-1, "plan", errno, EXL_PLAN, "%s", err);
  close(plan_fd);
  if (plan_parse(buf, len, &g_plan, err, sizeof err) != 0) fail(-1, "plan", EINVAL, EXL_PLAN, "%s", err);
  if (host_env) take_host_env(&g_plan);
  if (i < argc) {
    size_t keep = g_plan.command_index, n = keep + (size_t)(argc - i);
    char **v = calloc(n + 1, sizeof *v);
    if (!v) fail(-1, "args", ENOMEM, EXL_INTERNAL, "out of memory");
    memcpy(v, g_plan.argv, keep * sizeof *v);
    memcpy(v + keep, argv + i, (size_t)(argc - i) * sizeof *v);
    g_plan.argv = v;
    g_plan.nargv = n;
  }
  if (g_plan.uid_out != ru || g_plan.gid_out != rg)
    fail(-1, "uid_map", EPERM, EXL_NS, "the plan maps host uid %u gid %u but the helper runs as uid %u gid %u",
         g_plan.uid_out, g_plan.gid_out, (unsigned)ru, (unsigned)rg);

  /* From here on, signals to forward stay pending until the container
   * process exists (supervise() then passes them on), so a SIGTERM during
   * setup still ends the payload and the cleanup runs. */
  sigset_t set, old;
  sigemptyset(&set);
  for (size_t k = 0; k < sizeof fwd_signals / sizeof fwd_signals[0]; k++) sigaddset(&set, fwd_signals[k]);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, &old) != 0) fail(-1, "signals", errno, EXL_INTERNAL, "block signals");
  mode_t um = umask(0);
  g_old_mask = old;
  g_umask = um;
  g_main_pid = getpid();
  if (g_fallback && g_status_fd < 0) open_status_pipe();
  g_rs.warm_root = g_rs.warm_sock = -1;
  if (!warm_join(&g_plan, &g_rs)) setup_namespaces(&g_plan);
  g_helper_pid = getpid();
  setup_stage_and_root(&g_plan, &g_rs);
  report_timing("start", t_start);
  report_timing("image-open", mono_ns() - t_start);

  if (g_plan.pidns && unshare(CLONE_NEWPID) != 0) {
    int e = errno;
    fail(-1, "pidns", e, EXL_NS, "unshare(CLONE_NEWPID)");
  }
  /* fuse-overlayfs servers are started by this process on the container's request (fuse-overlay.c) */
  int sv[2] = {-1, -1};
  g_rs.ovl_sock = -1;
  if (plan_has_fuse_overlay(&g_plan) && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    fail(-1, "fork", errno, EXL_INTERNAL, "socketpair for the overlay servers");
  pid_t helper = getpid();
  pid_t child = fork();
  if (child < 0) {
    int e = errno;
    fail(-1, "fork", e, EXL_INTERNAL, "fork the container process");
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != helper && !g_plan.pidns) _exit(EXL_INTERNAL);
    /* a mount namespace of the container's own: the helper keeps the host
     * view to clean up after it */
    if (unshare(CLONE_NEWNS) != 0) fail(-1, "unshare", errno, EXL_NS, "unshare(CLONE_NEWNS) for the container");
    if (sv[0] >= 0) close(sv[0]);
    if (g_rs.warm_sock >= 0) close(g_rs.warm_sock); /* the helper holds the keeper's connection */
    g_rs.ovl_sock = sv[1];
    uint64_t t_ops = mono_ns();
    uint64_t ovl = run_mount_ops(&g_plan, &g_rs);
    g_ops_end = mono_ns();
    report_timing("mount", g_ops_end - t_ops - ovl);
    report_timing("overlay", ovl);
    if (g_rs.ovl_sock >= 0) close(g_rs.ovl_sock); /* the helper stops listening */
    g_rs.ovl_sock = -1;
    enter_root(&g_plan, &g_rs);
    drop_capabilities();
    if (!g_plan.pidns) exec_payload(&g_plan, &old, um);
    /* PID 1 of the new namespace: start the payload, forward, reap. */
    pid_t payload = fork();
    if (payload < 0) fail(-1, "fork", errno, EXL_INTERNAL, "fork the payload");
    if (payload == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      exec_payload(&g_plan, &old, um);
    }
    _exit(status_code(supervise(payload, &set, NULL)));
  }
  g_container = child;
  if (g_status_rd >= 0) { /* later failures of this process go to stderr; the container's records stay in the pipe */
    close(g_status_fd);
    g_status_fd = -1;
  }
  if (sv[1] >= 0) close(sv[1]);
  g_rs.ovl_sock = sv[0];
  serve_overlays(&g_plan, &g_rs);
  int st = supervise(child, &set, &g_rs);
  cleanup_host(&g_plan, &g_rs);
  if (g_status_rd >= 0) return hand_over(status_code(st));
  return status_code(st);
}
