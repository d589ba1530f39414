/*
 * fdlimit.h
 *	  Raising RLIMIT_NOFILE for programs that hold many sockets.
 */
#ifndef WORKER_FDLIMIT_H
#define WORKER_FDLIMIT_H

/*
 * Raises the soft limit on open files to want (capped at the hard limit;
 * as root the hard limit is raised too when possible). Returns the soft
 * limit now in force.
 */
extern long fdlimit_raise(long want);

#endif /* WORKER_FDLIMIT_H */
