/*
 * hpcc-launch: the single-threaded helper that executes one LaunchPlan
 * (src/runtime/plan.ts). TypeScript decides; this program only acts. It
 * parses no images, merges no environment, reads no configuration.
 *
 * Files: plan.c (wire-format parser), status.c (status records), setup.c
 * (namespaces, stage, squashfuse root, pivot_root, capabilities, cleanup),
 * ops.c (the mount ops), resolve.c (container paths resolved inside the
 * new root, with or without openat2),
 * overlay.c (the overlay op's methods: kernel, skeleton), fuse-overlay.c
 * (the fuse-overlayfs method and the helper's server for it), main.c
 * (command line, process tree, signal forwarding, exec).
 *
 * Exit codes (the launcher band 96..111 of src/errors/index.ts, plus the
 * shell's 126/127 for a payload that cannot be executed):
 *   96  usage error (bad command line)
 *   97  refused: running setuid/setgid, prctl failed, or a --plan FILE that
 *       is not a regular file of the caller's that only they may write
 *   98  the plan is malformed (wrong magic/version, truncated, bounds)
 *   99  namespace setup failed (unshare, setgroups, uid_map, gid_map)
 *  100  the image root failed (image missing, FUSE server failed to mount)
 *  101  a mount op failed
 *  102  pivot_root, chdir(cwd) or dropping capabilities failed
 *  103  internal failure (fork, out of memory, signal setup)
 * (104..111 belong to hpcc itself: errors found while building the plan,
 * src/runtime/builder/build.ts; the helper never exits with them.)
 *  126  the payload was found but could not be executed (EACCES, ...)
 *  127  the payload was not found (ENOENT)
 * Otherwise the payload's own status: its exit code, or 128+N when it was
 * killed by signal N.
 */
#ifndef HPCC_LAUNCH_H
#define HPCC_LAUNCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* HPCC_PLAN_MAGIC, HPCC_PLAN_VERSION (the version hpcc writes) and the bounds of
 * the wire format (PLAN_MAX_*): generated from src/runtime/codec.ts and plan.ts */
#include "hpcc-contract.h"

#define HPCC_PLAN_VERSION_MIN 2 /* oldest read: its overlay op has no method list (kernel only) */
#define HPCC_XSTR(x) #x
#define HPCC_STR(x) HPCC_XSTR(x)

enum {
  EXL_USAGE = 96,
  EXL_PRIV = 97,
  EXL_PLAN = 98,
  EXL_NS = 99,
  EXL_ROOTFS = 100,
  EXL_MOUNT = 101,
  EXL_ROOT = 102,
  EXL_INTERNAL = 103,
  EXL_NOEXEC = 126,
  EXL_NOTFOUND = 127,
};

enum op_kind { OP_BIND, OP_TMPFS, OP_PROC, OP_MKDIR, OP_FILE, OP_OVERLAY, OP_REMOUNT_RO };
/* How an overlay op is made, tried in the plan's order (overlay.c). */
enum ovl_method { OVL_KERNEL, OVL_FUSE, OVL_SKELETON };
#define OVL_MAX_METHODS 3
#define OVL_MAX_FUSE 4 /* fuse-overlayfs servers per launch */

struct mount_op {
  enum op_kind kind;
  const char *src;     /* bind */
  const char *dst;     /* every op: absolute path inside the container */
  const char *content; /* file */
  size_t content_len;
  unsigned mode;       /* tmpfs, mkdir, file */
  uint64_t size;       /* tmpfs, 0 = kernel default */
  int readonly, optional, writable;
  enum ovl_method methods[OVL_MAX_METHODS]; /* overlay: the methods to try, in order */
  size_t nmethods;
  const char *ovl_helper; /* overlay: fuse-overlayfs path ("" when fuse is not a method) */
};

struct plan {
  unsigned version; /* HPCC_PLAN_VERSION_MIN .. HPCC_PLAN_VERSION */
  uint32_t uid_in, uid_out, gid_in, gid_out;
  int pidns;
  int rootfs_fuse; /* 1: squashfuse, 0: dir */
  const char *image, *fuse_helper, *mountpoint; /* squashfuse */
  uint64_t offset;
  /* version 4, squashfuse: a warm mount to join or start (warm.c); warm_dir NULL when off */
  const char *warm_dir, *warm_key, *warm_id;
  uint64_t warm_idle; /* seconds */
  int warm_required;  /* --sharens: fail rather than launch in namespaces of its own */
  const char *rootdir; /* dir */
  const char *stage;
  size_t nmounts;
  struct mount_op *mounts;
  const char *cwd;
  size_t nenv;
  char **env; /* NULL-terminated */
  size_t nargv;
  char **argv; /* NULL-terminated */
  size_t command_index; /* argv[0..command_index) is the wrapper prefix, < nargv */
};

/* plan.c */
int plan_read_fd(int fd, char **buf, size_t *len, char *err, size_t errlen);
int plan_parse(char *buf, size_t len, struct plan *p, char *err, size_t errlen);
const char *op_name(enum op_kind k);

/* status.c: a failure is reported once, on the status fd when one was
 * given (else on stderr as one line), and the process exits with `code`. */
extern int g_status_fd;
void report(int index, const char *step, int err, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* an informational record ("status/1 info INDEX STEP MESSAGE"), status fd only */
void report_info(int index, const char *step, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* --report-phases (hpcc --timings): the helper's phases as info records (status.c) */
extern int g_timings;
uint64_t mono_ns(void);
void report_timing(const char *phase, uint64_t ns);
_Noreturn void fail(int index, const char *step, int err, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* setup.c */
struct rootfs_state {
  pid_t fuse_pid; /* 0 when none */
  pid_t ovl_pid[OVL_MAX_FUSE]; /* fuse-overlayfs servers (children of the helper), 0 when none */
  int ovl_sock; /* helper <-> container socket for fuse-overlayfs requests, -1 when none */
  int made_stage, made_mountpoint, stage_mounted, fuse_mounted;
  int warm_root; /* joined a warm mount (warm.c): an O_PATH fd of its root, else -1 */
  int warm_sock; /* the connection to its keeper, held while the container runs, else -1 */
  char newroot[PLAN_MAX_PATH + 16];
  char scratch[PLAN_MAX_PATH + 16];
};
void setup_namespaces(const struct plan *p);
void setup_stage_and_root(const struct plan *p, struct rootfs_state *rs);
/* returns the nanoseconds spent in overlay ops (--timings) */
uint64_t run_mount_ops(const struct plan *p, const struct rootfs_state *rs);
int ro_at_path(const struct rootfs_state *rs, const char *dst, int recursive);
int resolve_target(const struct rootfs_state *rs, const char *dst, int create, char *out, size_t n);
/* resolve.c: an O_PATH fd of `path` resolved inside the directory `rfd` as the root, or -1 (errno) */
int resolve_in_root(int rfd, const char *path);
int resolve_forced_walk(void);
/* overlay.c */
void op_overlay(const struct plan *p, size_t idx, const char *target, const struct rootfs_state *rs);
int plan_has_fuse_overlay(const struct plan *p);
/* fuse-overlay.c */
int ovl_fuse(const struct plan *p, size_t idx, const char *target, const struct rootfs_state *rs, char *why, size_t n);
void serve_overlays(const struct plan *p, struct rootfs_state *rs);
void stop_overlay_servers(struct rootfs_state *rs);
void forget_child(struct rootfs_state *rs, pid_t pid);
void enter_root(const struct plan *p, const struct rootfs_state *rs);
void drop_capabilities(void);
void stop_fuse(struct rootfs_state *rs);
void cleanup_host(const struct plan *p, struct rootfs_state *rs);
/* setup.c, for the keeper too: namespaces with mounts private (0) or slaves of the host's (1);
 * mount squashfuse on `target` serving `image_arg`, its log into `logfd` */
void setup_userns(const struct plan *p, int slave);
void fuse_mount_at(const struct plan *p, struct rootfs_state *rs, const char *target, const char *image_arg, int logfd);
/* warm.c: join the plan's warm mount (starting its keeper when there is none): 1 when joined (the
 * helper is then in the keeper's user namespace and a private copy of its mount namespace, rs->warm_root
 * set), 0 when the launch goes on as without one (no namespace entered) */
int warm_join(const struct plan *p, struct rootfs_state *rs);
/* fdpass.c: a message with up to FDPASS_MAX descriptors (SCM_RIGHTS). send: 0, or -1 (errno) unless
 * all `len` bytes went. recv: the message (at most n-1 bytes, NUL-terminated) and the descriptors passed
 * (close-on-exec) in fds[0..maxfds), the others -1; *nfds how many came; *truncated when the kernel had
 * more to pass than fit. Returns the length, 0 at end of file, -1 (errno). */
#define FDPASS_MAX 3
int fdpass_send(int sock, const void *msg, size_t len, const int *fds, int nfds);
ssize_t fdpass_recv(int sock, char *msg, size_t n, int *fds, int maxfds, int *nfds, int *truncated);
/* main.c: undo host-side setup when fail() ends the helper process itself */
void on_fail_cleanup(void);
/* how a failed process ends (main.c: with --fallback the helper may hand the launch on) */
_Noreturn void on_fail_exit(int code);

#endif
