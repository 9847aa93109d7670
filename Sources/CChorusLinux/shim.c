#include "CChorusLinux.h"
