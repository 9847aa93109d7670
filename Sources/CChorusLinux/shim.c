#define _GNU_SOURCE
#include <sys/socket.h>
#include <pthread.h>
#include <string.h>
#include "CChorusLinux.h"

int chorus_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

void chorus_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, 15);
    buf[15] = 0;
    pthread_setname_np(pthread_self(), buf);
}

static __thread void *current_loop;

void *chorus_current_loop(void) { return current_loop; }

void chorus_set_current_loop(void *loop) { current_loop = loop; }
