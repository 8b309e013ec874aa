/*
 * Status records. A setup failure is written once, as one line, to the
 * status fd (--status-fd N), then the process exits:
 *
 *   "status/1 fail" SP INDEX SP STEP SP ERRNO SP EXIT SP MESSAGE "\n"
 *
 * INDEX  0-based index of the failing mount op in the plan, or -1 for a
 *        step outside the mount list
 * STEP   the op name (bind, tmpfs, ...) or the step: args, privileges,
 *        plan, plan-file, unshare, setgroups, uid_map, gid_map, private, stage,
 *        image, fuse, rootfs, pidns, fork, signals, overlay-ro,
 *        pivot_root, chdir, caps, exec
 * ERRNO  the Linux errno (0 when none applies)
 * EXIT   the exit status the helper ends with (launch.h)
 * MESSAGE free text without newlines
 * Without a status fd the same facts go to stderr as one readable line.
 *
 * Informational records (status fd only, never on stderr; the helper goes on):
 *
 *   "status/1 info" SP INDEX SP STEP SP MESSAGE "\n"
 *
 * e.g. "status/1 info 0 overlay fuse tried: kernel(Invalid argument)": the
 * overlay method op 0 used, and why the methods before it failed.
 *
 * With --report-phases (hpcc ... --timings), the helper's phases as info records:
 *
 *   "status/1 info -1 timing" SP PHASE SP NANOSECONDS "\n"
 *
 * PHASE "start" carries the helper's start on CLOCK_MONOTONIC (the clock of
 * Node's process.hrtime), every other phase its duration: image-open (plan
 * read, namespaces, the image's root), mount, overlay (the mount ops; the
 * overlay ops' time is counted apart), exec (pivot_root up to execve, sent
 * just before it). hpcc prints them (src/runtime/timings.ts); the helper
 * only measures.
 */
#include "launch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int g_status_fd = -1;
int g_timings;

uint64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void report_timing(const char *phase, uint64_t ns)
{
  if (g_timings) report_info(-1, "timing", "%s %llu", phase, (unsigned long long)ns);
}

static void vreport(int index, const char *step, int err, int code, const char *fmt, va_list ap)
{
  char msg[1024], line[1400];
  vsnprintf(msg, sizeof msg, fmt, ap);
  for (char *c = msg; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  int n;
  if (g_status_fd >= 0)
    n = snprintf(line, sizeof line, "status/1 fail %d %s %d %d %s\n", index, step, err, code, msg);
  else if (index >= 0)
    n = snprintf(line, sizeof line, "hpcc-launch: mount op %d (%s) failed: %s%s%s\n", index, step, msg,
                 err ? ": " : "", err ? strerror(err) : "");
  else
    n = snprintf(line, sizeof line, "hpcc-launch: %s failed: %s%s%s\n", step, msg, err ? ": " : "",
                 err ? strerror(err) : "");
  if (n < 0) return;
  if ((size_t)n >= sizeof line) {
    n = (int)sizeof line - 1;
    line[n - 1] = '\n';
  }
  int fd = g_status_fd >= 0 ? g_status_fd : 2;
  ssize_t w;
  do w = write(fd, line, (size_t)n);
  while (w < 0 && errno == EINTR);
}

void report(int index, const char *step, int err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vreport(index, step, err, code, fmt, ap);
  va_end(ap);
}

void report_info(int index, const char *step, const char *fmt, ...)
{
  if (g_status_fd < 0) return;
  char msg[1024], line[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *c = msg; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  int n = snprintf(line, sizeof line, "status/1 info %d %s %s\n", index, step, msg);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1, line[n - 1] = '\n';
  ssize_t w;
  do w = write(g_status_fd, line, (size_t)n);
  while (w < 0 && errno == EINTR);
}

_Noreturn void fail(int index, const char *step, int err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vreport(index, step, err, code, fmt, ap);
  va_end(ap);
  on_fail_cleanup();
  on_fail_exit(code);
}
