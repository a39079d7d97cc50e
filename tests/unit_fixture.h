/* unit_fixture.h - the scratch files, mirror, merchant and profile the unit tests share. */
#ifndef KLEEP_UNIT_FIXTURE_H
#define KLEEP_UNIT_FIXTURE_H

#include <fcntl.h>
#include <sys/stat.h>

#include "unit.h"

#include "config.h"
#include "profile.h"
#include "store.h"
#include "tz.h"

/* Write dir/name with mode, making the folders in name first; the path, which the caller frees. */
static inline char *unit_write(const char *dir, const char *name, mode_t mode, const char *text)
{
	char *path;
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		fail_msg("cannot write %s", path);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0); /* the umask may have cut the mode */
	close(fd);
	return path;
}

/* A scratch folder *dir holding a migrated mirror, *dir/m.db, open in *st. */
static inline void unit_mirror_open(char **dir, struct store **st)
{
	char path[4096], err[512];
	*dir = unit_tmpdir();
	snprintf(path, sizeof(path), "%s/m.db", *dir);
	if (store_open(path, st, err, sizeof(err)) < 0)
		fail_msg("store_open: %s", err);
}

/* Close the mirror and remove the folder (dir is freed). */
static inline void unit_mirror_close(char *dir, struct store *st)
{
	store_close(st);
	unit_rmtree(dir);
}

/*
 * m as config_load leaves a merchant with this id and "languages = fr,en":
 * Europe/Paris, product_id_field id, parent_reference_field parent_reference.
 * The zone's table joins *zones (the caller frees it with tz_free).
 */
static inline void unit_merchant(struct merchant_conf *m, const char *id, struct tz **zones)
{
	static char zone[] = "Europe/Paris", id_field[] = "id", parent_field[] = "parent_reference";
	char err[512];
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	memcpy(m->languages[0], "fr", 3);
	memcpy(m->languages[1], "en", 3);
	m->n_languages = 2;
	m->timezone = zone;
	m->product_id_field = id_field;
	m->parent_reference_field = parent_field;
	if (tz_get(zones, zone, &m->tz, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

/* Built-in profile name from lib/profiles with these overrides; the caller frees it. */
static inline struct profile *unit_profile(const char *name, const struct profile_override *ov,
					   size_t n_ov)
{
	struct profile *p = NULL;
	assert_int_equal(profile_load("lib/profiles", name, ov, n_ov, &p, stderr), 0);
	assert_non_null(p);
	return p;
}

#endif
