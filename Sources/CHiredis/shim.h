// hiredis (Debian libhiredis-dev, 0.14.x): the reply types and the asynchronous API.
// Swift assigns the event hooks (ac->ev.addRead ...) and callbacks itself as @convention(c)
// closures and sends commands with redisAsyncCommandArgv; the one helper below reads a signal
// disposition, whose SIG_IGN constant Swift cannot import.
#ifndef C_HIREDIS_SHIM_H
#define C_HIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <signal.h>

/// 1 when the process ignores SIGPIPE (so a write to a closed socket cannot kill it).
static inline int chorus_sigpipe_ignored(void) {
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) != 0) return 0;
    return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN;
}
#endif
