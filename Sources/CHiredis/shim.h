// hiredis (Debian libhiredis-dev, 0.14.x): the reply types and the asynchronous API.
// Swift assigns the event hooks (ac->ev.addRead ...) and callbacks itself as @convention(c)
// closures and sends commands with redisAsyncCommandArgv, so no C code is needed here.
#ifndef C_HIREDIS_SHIM_H
#define C_HIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#endif
