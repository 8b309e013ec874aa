/*
 * Messages with descriptors over a unix socket (SCM_RIGHTS), for the two
 * channels that pass them: fuse-overlay.c (helper <-> container, one
 * /dev/fuse descriptor) and warm.c (keeper -> joining launch, its
 * namespaces and mount root).
 */
#include "launch.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

union fdpass_ctl {
  char buf[CMSG_SPACE(FDPASS_MAX * sizeof(int))];
  struct cmsghdr align;
};

int fdpass_send(int sock, const void *msg, size_t len, const int *fds, int nfds)
{
  if (nfds < 0 || nfds > FDPASS_MAX) return errno = EINVAL, -1;
  struct iovec iov = {(void *)msg, len};
  union fdpass_ctl u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds > 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  ssize_t w;
  do w = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  return w == (ssize_t)len ? 0 : -1;
}

ssize_t fdpass_recv(int sock, char *msg, size_t n, int *fds, int maxfds, int *nfds, int *truncated)
{
  if (maxfds < 0 || maxfds > FDPASS_MAX || n == 0) return errno = EINVAL, -1;
  union fdpass_ctl u;
  struct iovec iov = {msg, n - 1};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = CMSG_SPACE((size_t)maxfds * sizeof(int));
  for (int i = 0; i < maxfds; i++) fds[i] = -1;
  *nfds = 0;
  ssize_t r;
  do r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -1;
  msg[r] = '\0';
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      memcpy(fds, CMSG_DATA(c), (size_t)(k > maxfds ? maxfds : k) * sizeof(int));
      *nfds = k;
    }
  *truncated = (mh.msg_flags & MSG_CTRUNC) != 0;
  return r;
}
