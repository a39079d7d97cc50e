/* faultvfs.c - a test-only SQLite VFS over the default one that fails the N-th write, fsync or truncate.
 *
 * Built as build/tests/faultvfs.so and loaded only by tests, with LD_PRELOAD
 * into the real kleepd: its constructor registers the shim as the default VFS,
 * so kleepd's code is the code under test, unchanged.  The way SQLite tests
 * itself (its "test_vfs.c" / I/O error loops): every call that changes a file
 * is a fault point.
 *
 * Environment:
 *   KLEEP_FAULT_AT=N      fail the N-th xWrite/xSync/xTruncate (counted from 1
 *                         over every file of the process); 0 or unset: none
 *   KLEEP_FAULT_ERRNO=E   ENOSPC (the default: SQLITE_FULL for a write) or EIO
 *   KLEEP_FAULT_COUNT=F   at exit, write to F how many such calls were made
 *                         whether the fault fired and in which kind of call
 *                         ("<calls> <fired> write|fsync|truncate|-\n")
 *   KLEEP_FAULT_TRACE=1   say on stderr which call of which file failed
 * Only the N-th call fails; the ones after it succeed again, as a disk that
 * had a moment of trouble.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

struct shim_file {
	sqlite3_file hdr;    /* pMethods = &shim_io */
	sqlite3_file *real;  /* the default VFS's file, right after this struct */
	const char *name;    /* SQLite's, valid while the file is open; NULL for temp files */
};

static sqlite3_vfs *base;
static sqlite3_vfs shim;
static sqlite3_io_methods shim_io;
static long fault_at;
static int fault_errno = ENOSPC;
static long calls;
static int fired;
static const char *fired_op = "-"; /* which kind of call failed */

/* Whether this call is the one to fail; sets errno as the default VFS would. */
static int fault_now(sqlite3_file *f, const char *op)
{
	long n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
	if (fault_at <= 0 || n != fault_at)
		return 0;
	if (getenv("KLEEP_FAULT_TRACE"))
		fprintf(stderr, "faultvfs: call %ld fails: %s of %s\n", n, op,
			((struct shim_file *)f)->name ? ((struct shim_file *)f)->name : "a temporary file");
	__atomic_store_n(&fired, 1, __ATOMIC_SEQ_CST);
	fired_op = op;
	errno = fault_errno; /* the default VFS's xGetLastError returns errno */
	return 1;
}

#define REAL(f) (((struct shim_file *)(f))->real)

static int x_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods->xClose(REAL(f));
	return rc;
}

static int x_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int x_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (fault_now(f, "write"))
		return fault_errno == ENOSPC ? SQLITE_FULL : SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int x_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	if (fault_now(f, "truncate"))
		return SQLITE_IOERR_TRUNCATE;
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int x_sync(sqlite3_file *f, int flags)
{
	if (fault_now(f, "fsync"))
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int x_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int x_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int x_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int x_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int x_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int x_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int x_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int x_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **out)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, out);
}

static int x_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void x_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int x_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int x_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}

static int x_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static sqlite3_io_methods shim_io = {
	3, x_close, x_read, x_write, x_truncate, x_sync, x_size, x_lock, x_unlock, x_reserved,
	x_fcntl, x_sector, x_devchar, x_shm_map, x_shm_lock, x_shm_barrier, x_shm_unmap,
	x_fetch, x_unfetch,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct shim_file *sf = (struct shim_file *)f;
	(void)vfs;
	sf->real = (sqlite3_file *)(sf + 1);
	sf->hdr.pMethods = NULL;
	sf->name = name;
	int rc = base->xOpen(base, name, sf->real, flags, out);
	if (sf->real->pMethods)
		sf->hdr.pMethods = &shim_io;
	return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	return base->xDelete(base, name, sync);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return base->xAccess(base, name, flags, out);
}

static int v_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return base->xFullPathname(base, name, n, out);
}

static void report(void)
{
	const char *path = getenv("KLEEP_FAULT_COUNT");
	if (!path)
		return;
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%ld %d %s\n", __atomic_load_n(&calls, __ATOMIC_SEQ_CST),
		__atomic_load_n(&fired, __ATOMIC_SEQ_CST), fired_op);
	fclose(f);
}

__attribute__((constructor)) static void faultvfs_init(void)
{
	const char *at = getenv("KLEEP_FAULT_AT"), *e = getenv("KLEEP_FAULT_ERRNO");
	fault_at = at ? strtol(at, NULL, 10) : 0;
	if (e && strcmp(e, "EIO") == 0)
		fault_errno = EIO;
	if (sqlite3_initialize() != SQLITE_OK || !(base = sqlite3_vfs_find(NULL)))
		return;
	shim = *base;
	shim.zName = "kleep-faultvfs";
	shim.szOsFile = (int)sizeof(struct shim_file) + base->szOsFile;
	shim.pNext = NULL;
	shim.xOpen = v_open;
	shim.xDelete = v_delete;
	shim.xAccess = v_access;
	shim.xFullPathname = v_fullpath;
	sqlite3_vfs_register(&shim, 1);
	atexit(report);
}
