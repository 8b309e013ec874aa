/*
 * Container paths resolved inside the new root: a symlink of the image,
 * absolute or with "..", never leads out of it onto the host.
 *
 * With openat2 (Linux 5.6+) the kernel does it: RESOLVE_IN_ROOT (and no
 * magic links). Without it (ENOSYS: RHEL 8's 4.18 and older), this file
 * walks the path itself, one component at a time: each component is opened
 * with O_PATH|O_NOFOLLOW relative to the directory reached so far; a symlink
 * is read (readlinkat) and its target walked in its place, an absolute one
 * from the root again; ".." pops the directory the walk came from, so it
 * stops at the root; more than RESOLVE_MAX_HOPS symlinks give ELOOP. Magic
 * links (/proc/self/fd/N) are read as plain text, never jumped through.
 *
 * HPCC_LAUNCH_NO_OPENAT2=1 in the helper's environment forces the walk on
 * any kernel. It is a test hook (the suites run the hostile-image cases
 * through both resolvers); it makes nothing less safe.
 */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RESOLVE_MAX_HOPS 40
#define RESOLVE_MAX_DEPTH 256 /* directories below the root a walk may hold open */

static int g_force_walk = -1;

int resolve_forced_walk(void)
{
  if (g_force_walk < 0) {
    const char *v = getenv("HPCC_LAUNCH_NO_OPENAT2");
    g_force_walk = v && !strcmp(v, "1");
  }
  return g_force_walk;
}

static void close_stack(int *stack, int depth)
{
  for (int i = 0; i <= depth; i++)
    if (stack[i] >= 0) close(stack[i]);
}

/*
 * The walk. `work` holds the components still to resolve ("a/b/c", no
 * leading slash needed); a symlink's target is spliced in front of the rest.
 * Returns an O_PATH fd of the object (the last component is followed when it
 * is a symlink, like openat2 without O_NOFOLLOW), or -1 with errno.
 */
static int walk_in_root(int rfd, const char *path)
{
  char *work = malloc(2 * (PLAN_MAX_PATH + 1)), *link = malloc(PLAN_MAX_PATH + 1);
  int *stack = malloc(sizeof(int) * (RESOLVE_MAX_DEPTH + 1));
  int depth = 0, hops = 0, ret = -1, err = 0;
  if (!work || !link || !stack) {
    err = ENOMEM;
    goto out_nostack;
  }
  if (strlen(path) > PLAN_MAX_PATH) {
    err = ENAMETOOLONG;
    goto out_nostack;
  }
  strcpy(work, path);
  stack[0] = openat(rfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (stack[0] < 0) {
    err = errno;
    goto out_nostack;
  }
  size_t pos = 0;
  for (;;) {
    while (work[pos] == '/') pos++;
    if (!work[pos]) break;
    size_t len = strcspn(work + pos, "/");
    char name[256];
    if (len >= sizeof name) {
      err = ENAMETOOLONG;
      goto out;
    }
    memcpy(name, work + pos, len);
    name[len] = '\0';
    pos += len;
    int more = work[pos + strspn(work + pos, "/")] != '\0';
    if (!strcmp(name, ".")) continue;
    if (!strcmp(name, "..")) {
      if (depth > 0) close(stack[depth--]); /* at the root, ".." is the root */
      continue;
    }
    int fd = openat(stack[depth], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      err = errno;
      if (fd >= 0) close(fd);
      goto out;
    }
    if (S_ISLNK(st.st_mode)) {
      ssize_t n = readlinkat(fd, "", link, PLAN_MAX_PATH);
      err = errno;
      close(fd);
      if (n < 0) goto out;
      if (++hops > RESOLVE_MAX_HOPS) {
        err = ELOOP;
        goto out;
      }
      link[n] = '\0';
      size_t rest = strlen(work + pos);
      if ((size_t)n + 1 + rest > 2 * PLAN_MAX_PATH) {
        err = ENAMETOOLONG;
        goto out;
      }
      /* work := link "/" rest */
      memmove(work + n + 1, work + pos, rest + 1);
      memcpy(work, link, (size_t)n);
      work[n] = '/';
      pos = 0;
      if (link[0] == '/')
        while (depth > 0) close(stack[depth--]);
      continue;
    }
    if (more && !S_ISDIR(st.st_mode)) {
      close(fd);
      err = ENOTDIR;
      goto out;
    }
    if (depth == RESOLVE_MAX_DEPTH) {
      close(fd);
      err = ENAMETOOLONG;
      goto out;
    }
    stack[++depth] = fd;
  }
  ret = stack[depth];
  stack[depth] = -1;
out:
  close_stack(stack, depth);
out_nostack:
  free(work);
  free(link);
  free(stack);
  if (ret < 0) errno = err;
  return ret;
}

int resolve_in_root(int rfd, const char *path)
{
  const char *rel = path[0] == '/' ? path + 1 : path;
  if (!rel[0]) rel = ".";
  if (!resolve_forced_walk()) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    int fd;
    for (int tries = 0; tries < 8; tries++) { /* EAGAIN: a rename raced the walk; try again */
      fd = (int)syscall(SYS_openat2, rfd, rel, &how, sizeof how);
      if (fd >= 0 || errno != EAGAIN) break;
    }
    if (fd >= 0 || errno != ENOSYS) return fd;
  }
  return walk_in_root(rfd, rel);
}
