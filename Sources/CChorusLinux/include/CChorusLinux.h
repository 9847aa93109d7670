// The few Linux headers Swift's Glibc module does not export, plus tiny helpers
// for things Swift cannot express directly (packed epoll_event, variadic fcntl).
#ifndef C_CHORUS_LINUX_H
#define C_CHORUS_LINUX_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <limits.h>
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

// epoll_event is packed on x86_64; read and write its fields through C.
static inline uint64_t chorus_epoll_event_data(const struct epoll_event *ev) { return ev->data.u64; }
static inline uint32_t chorus_epoll_event_events(const struct epoll_event *ev) { return ev->events; }

static inline int chorus_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

// accept4 needs _GNU_SOURCE, which Swift's Glibc module is not built with.
int chorus_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
// pthread_setname_np is also _GNU_SOURCE-only.
void chorus_set_thread_name(const char *name);

// The object driving the calling thread's event loop, or NULL (a C thread-local: Swift has none).
// "Which loop am I on?" is then one load instead of a scan over the loops.
void *chorus_current_loop(void);
void chorus_set_current_loop(void *loop);

static inline int chorus_errno(void) { return errno; }

// Bytes a socket's send queue still holds (sent but unacknowledged, and not yet sent): ioctl is
// variadic, which Swift cannot call. -1 on error.
static inline int chorus_send_queue_bytes(int fd) {
    int n = 0;
    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}
static inline int chorus_iov_max(void) { return IOV_MAX; }

// Constants Swift imports awkwardly (enum-valued macros).
static const uint32_t CHORUS_EPOLLIN = EPOLLIN;
static const uint32_t CHORUS_EPOLLOUT = EPOLLOUT;
static const uint32_t CHORUS_EPOLLERR = EPOLLERR;
static const uint32_t CHORUS_EPOLLHUP = EPOLLHUP;
static const uint32_t CHORUS_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t CHORUS_EPOLLET = EPOLLET;
static const int CHORUS_SOCK_NONBLOCK = SOCK_NONBLOCK;
static const int CHORUS_SOCK_CLOEXEC = SOCK_CLOEXEC;
static const int CHORUS_SOCK_STREAM = SOCK_STREAM;
static const int CHORUS_EFD_NONBLOCK = EFD_NONBLOCK;
static const int CHORUS_EFD_CLOEXEC = EFD_CLOEXEC;
static const int CHORUS_TFD_NONBLOCK = TFD_NONBLOCK;
static const int CHORUS_TFD_CLOEXEC = TFD_CLOEXEC;
static const int CHORUS_EPOLL_CLOEXEC = EPOLL_CLOEXEC;

#endif
