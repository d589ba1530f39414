/*
 * fdlimit.c
 *	  Raising RLIMIT_NOFILE (see fdlimit.h).
 */
#include "fdlimit.h"

#include <sys/resource.h>

long
fdlimit_raise(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur >= (rlim_t) want)
		return (long) rl.rlim_cur;
	if (rl.rlim_max < (rlim_t) want)
	{
		struct rlimit up = {(rlim_t) want, (rlim_t) want};

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return want;
		rl.rlim_cur = rl.rlim_max;
	}
	else
		rl.rlim_cur = (rlim_t) want;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return (long) rl.rlim_cur;
}
