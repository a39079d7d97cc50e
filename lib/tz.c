/* tz.c - TZif files (RFC 8536) read into immutable per-zone tables, and lookups in them.
 *
 * A table is the file's version 2+ data (64-bit transition times; version 1
 * files' 32-bit data when that is all there is) and its footer, a POSIX TZ
 * string such as "CET-1CEST,M3.5.0,M10.5.0/3" that rules every instant after
 * the last transition (RFC 8536 §3.3).  Lookups are a binary search in the
 * transitions or a few date sums for the rule: no lock, no cache, no TZ.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "civil.h"
#include "tz.h"

#define TZ_FILE_MAX_BYTES (256 * 1024) /* real zones are under 4 KiB */
#define TZ_NAME_MAX 255
#define TZ_ABBR_MAX 15
#define TZ_FOOTER_MAX 255
#define TZ_UTOFF_MAX (26 * 3600)       /* RFC 8536: offsets lie within -89999..93599 s */
#define TZ_RULE_HOURS_MAX 167          /* RFC 8536 §3.3.1: rule times span -167..167 h */
#define TZ_RULE_T_MAX ((int64_t)1 << 40) /* ~34,800 years: the rule is evaluated within this */
#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"

/* Reasons a load fails that change its result code. */
static const char TZ_OOM[] = "out of memory";
static const char TZ_NOT_TZIF[] = "not a TZif file (a folder or a table is not a zone)";

struct tz_type {
	int32_t utoff;
	bool isdst;
	uint8_t abbr; /* index into chars */
};

/* A rule's date: Jn (1..365, never Feb 29), n (0..365), or Mm.w.d; then a time of day. */
struct tz_when {
	char kind; /* 'J', 'D' or 'M' */
	int n, m, w, d;
	int32_t secs; /* local time of day of the change, may be negative or past 24 h */
};

struct tz_rule {
	bool present;  /* false: the last transition's type holds for ever */
	bool has_dst;
	int32_t std_off, dst_off; /* seconds east of UTC */
	struct tz_when start, end;
	char std_abbr[TZ_ABBR_MAX + 1], dst_abbr[TZ_ABBR_MAX + 1];
};

struct tz {
	struct tz *next; /* the list tz_get keeps */
	char *name;
	size_t n;        /* transitions */
	int64_t *at;     /* n instants, strictly ascending */
	uint8_t *idx;    /* n type indices */
	size_t n_types;
	struct tz_type *types;
	char *chars;     /* the abbreviations, NUL-terminated */
	struct tz_rule rule;
};

/* ---- reading the file ---- */

struct cur {
	const unsigned char *p;
	size_t left;
};

static const unsigned char *take(struct cur *c, size_t n)
{
	if (c->left < n)
		return NULL;
	const unsigned char *p = c->p;
	c->p += n;
	c->left -= n;
	return p;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_time(const unsigned char *p, size_t size)
{
	if (size == 4)
		return (int32_t)be32(p);
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

enum { C_ISUT, C_ISSTD, C_LEAP, C_TIME, C_TYPE, C_CHAR, C_COUNT };

struct hdr {
	unsigned char version; /* 0, '2', '3', '4' */
	uint32_t cnt[C_COUNT];
};

static const char *read_header(struct cur *c, struct hdr *h)
{
	const unsigned char *p = take(c, 44);
	if (!p && c->left >= 4 && memcmp(c->p, "TZif", 4) == 0)
		return "truncated header";
	if (!p || memcmp(p, "TZif", 4) != 0)
		return TZ_NOT_TZIF;
	h->version = p[4];
	for (int i = 0; i < C_COUNT; i++)
		h->cnt[i] = be32(p + 20 + 4 * i);
	return NULL;
}

/* Bytes of the data block after header h, with times of tsize bytes. */
static uint64_t block_size(const struct hdr *h, size_t tsize)
{
	const uint32_t *n = h->cnt;
	return (uint64_t)n[C_TIME] * (tsize + 1) + (uint64_t)n[C_TYPE] * 6 + n[C_CHAR] +
	       (uint64_t)n[C_LEAP] * (tsize + 4) + n[C_ISSTD] + n[C_ISUT];
}

static const char *check_counts(const struct hdr *h, const struct cur *c, size_t tsize)
{
	const uint32_t *n = h->cnt;
	if (n[C_TYPE] == 0 || n[C_TYPE] > 256 || n[C_CHAR] == 0 || n[C_CHAR] > 256)
		return "bad type or abbreviation count";
	if ((n[C_ISUT] && n[C_ISUT] != n[C_TYPE]) || (n[C_ISSTD] && n[C_ISSTD] != n[C_TYPE]))
		return "bad indicator count";
	if (n[C_LEAP])
		return "leap-second zones (right/...) are not supported";
	if (block_size(h, tsize) > c->left)
		return "truncated";
	return NULL;
}

/* The transitions, types and abbreviations of one data block into z. */
static const char *read_block(struct cur *c, const struct hdr *h, size_t tsize, struct tz *z)
{
	const char *why = check_counts(h, c, tsize);
	if (why)
		return why;
	z->n = h->cnt[C_TIME];
	z->n_types = h->cnt[C_TYPE];
	z->at = malloc((z->n ? z->n : 1) * sizeof(*z->at));
	z->idx = malloc(z->n ? z->n : 1);
	z->types = malloc(z->n_types * sizeof(*z->types));
	z->chars = malloc(h->cnt[C_CHAR]);
	if (!z->at || !z->idx || !z->types || !z->chars)
		return TZ_OOM;
	for (size_t i = 0; i < z->n; i++) {
		z->at[i] = be_time(take(c, tsize), tsize);
		if (i > 0 && z->at[i] <= z->at[i - 1])
			return "transition times out of order";
	}
	memcpy(z->idx, take(c, z->n), z->n);
	for (size_t i = 0; i < z->n; i++)
		if (z->idx[i] >= z->n_types)
			return "transition to a type that does not exist";
	for (size_t i = 0; i < z->n_types; i++) {
		const unsigned char *p = take(c, 6);
		int64_t off = (int32_t)be32(p);
		if (off < -TZ_UTOFF_MAX || off > TZ_UTOFF_MAX || p[4] > 1 || p[5] >= h->cnt[C_CHAR])
			return "bad local time type";
		z->types[i] = (struct tz_type){ .utoff = (int32_t)off, .isdst = p[4], .abbr = p[5] };
	}
	memcpy(z->chars, take(c, h->cnt[C_CHAR]), h->cnt[C_CHAR]);
	if (z->chars[h->cnt[C_CHAR] - 1] != '\0')
		return "abbreviations not NUL-terminated";
	take(c, (size_t)h->cnt[C_ISSTD] + h->cnt[C_ISUT]);
	return NULL;
}

/* ---- the footer's POSIX TZ string ---- */

struct pcur {
	const char *p, *end;
};

static bool peek(const struct pcur *s, char ch)
{
	return s->p < s->end && *s->p == ch;
}

static bool p_num(struct pcur *s, int max_digits, int *v)
{
	int n = 0, x = 0;
	while (s->p < s->end && isdigit((unsigned char)*s->p) && n < max_digits) {
		x = x * 10 + (*s->p++ - '0');
		n++;
	}
	*v = x;
	return n > 0;
}

/* "CET" or "<+1030>": at least three characters. */
static bool p_abbr(struct pcur *s, char out[TZ_ABBR_MAX + 1])
{
	size_t n = 0;
	bool quoted = peek(s, '<');
	if (quoted)
		s->p++;
	while (s->p < s->end) {
		unsigned char ch = (unsigned char)*s->p;
		if (quoted ? !(isalnum(ch) || ch == '+' || ch == '-') : !isalpha(ch))
			break;
		if (n == TZ_ABBR_MAX)
			return false;
		out[n++] = (char)ch;
		s->p++;
	}
	out[n] = '\0';
	if (quoted && !peek(s, '>'))
		return false;
	s->p += quoted;
	return n >= 3;
}

/* [+-]h[h[h]][:mm[:ss]] in seconds. */
static bool p_hms(struct pcur *s, int max_hours, int32_t *out)
{
	int sign = 1, h, m = 0, sec = 0;
	if (peek(s, '+') || peek(s, '-'))
		sign = *s->p++ == '-' ? -1 : 1;
	if (!p_num(s, 3, &h) || h > max_hours)
		return false;
	if (peek(s, ':')) {
		s->p++;
		if (!p_num(s, 2, &m) || m > 59)
			return false;
		if (peek(s, ':')) {
			s->p++;
			if (!p_num(s, 2, &sec) || sec > 59)
				return false;
		}
	}
	*out = sign * (h * 3600 + m * 60 + sec);
	return true;
}

/* Jn, n or Mm.w.d, then an optional /time (default 02:00). */
static bool p_when(struct pcur *s, struct tz_when *w)
{
	memset(w, 0, sizeof(*w));
	if (peek(s, 'J')) {
		s->p++;
		w->kind = 'J';
		if (!p_num(s, 3, &w->n) || w->n < 1 || w->n > 365)
			return false;
	} else if (peek(s, 'M')) {
		s->p++;
		w->kind = 'M';
		if (!p_num(s, 2, &w->m) || w->m < 1 || w->m > 12 || !peek(s, '.'))
			return false;
		s->p++;
		if (!p_num(s, 1, &w->w) || w->w < 1 || w->w > 5 || !peek(s, '.'))
			return false;
		s->p++;
		if (!p_num(s, 1, &w->d) || w->d > 6)
			return false;
	} else {
		w->kind = 'D';
		if (!p_num(s, 3, &w->n) || w->n > 365)
			return false;
	}
	w->secs = 7200;
	if (peek(s, '/')) {
		s->p++;
		return p_hms(s, TZ_RULE_HOURS_MAX, &w->secs);
	}
	return true;
}

/* An empty footer leaves r->present false. */
static bool parse_rule(const char *str, size_t len, struct tz_rule *r)
{
	struct pcur s = { str, str + len };
	int32_t off;

	memset(r, 0, sizeof(*r));
	if (len == 0)
		return true;
	r->present = true;
	if (!p_abbr(&s, r->std_abbr) || !p_hms(&s, 24, &off))
		return false;
	r->std_off = -off; /* POSIX counts west of UTC */
	if (s.p == s.end)
		return true;
	r->has_dst = true;
	if (!p_abbr(&s, r->dst_abbr))
		return false;
	r->dst_off = r->std_off + 3600;
	if (s.p < s.end && !peek(&s, ',')) {
		if (!p_hms(&s, 24, &off))
			return false;
		r->dst_off = -off;
	}
	if (r->dst_off < -TZ_UTOFF_MAX || r->dst_off > TZ_UTOFF_MAX)
		return false;
	if (s.p == s.end) { /* no dates: the US rule, as tzcode assumes */
		r->start = (struct tz_when){ .kind = 'M', .m = 3, .w = 2, .d = 0, .secs = 7200 };
		r->end = (struct tz_when){ .kind = 'M', .m = 11, .w = 1, .d = 0, .secs = 7200 };
		return true;
	}
	if (!peek(&s, ','))
		return false;
	s.p++;
	if (!p_when(&s, &r->start) || !peek(&s, ','))
		return false;
	s.p++;
	return p_when(&s, &r->end) && s.p == s.end;
}

static const char *read_footer(struct cur *c, struct tz_rule *r)
{
	const unsigned char *nl = take(c, 1);
	if (!nl || *nl != '\n')
		return "no footer";
	const unsigned char *s = c->p;
	const unsigned char *end = memchr(s, '\n', c->left < TZ_FOOTER_MAX ? c->left : TZ_FOOTER_MAX);
	if (!end)
		return "footer not ended by a newline";
	take(c, (size_t)(end - s) + 1);
	return parse_rule((const char *)s, (size_t)(end - s), r) ? NULL : "bad footer TZ string";
}

static const char *parse(struct tz *z, const unsigned char *buf, size_t len)
{
	struct cur c = { buf, len };
	struct hdr h;
	const char *why = read_header(&c, &h);
	if (why)
		return why;
	if (h.version == 0)
		return read_block(&c, &h, 4, z); /* version 1: 32-bit times, no footer */
	if (block_size(&h, 4) > c.left)
		return "truncated";
	take(&c, (size_t)block_size(&h, 4)); /* skip the version 1 data */
	if (read_header(&c, &h))
		return "no version 2 header after the version 1 data";
	if ((why = read_block(&c, &h, 8, z)))
		return why;
	return read_footer(&c, &z->rule);
}

/* ---- loading ---- */

static bool name_ok(const char *name)
{
	if (!*name || name[0] == '/' || strstr(name, "..") || strlen(name) > TZ_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
			return false;
	return true;
}

/* The whole file into *buf (caller frees); -ENOENT for anything that is not a regular file. */
static int slurp(const char *path, unsigned char **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = -ENOENT;

	*buf = NULL;
	if (fd < 0)
		return errno == ENOMEM ? -ENOMEM : -ENOENT;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	r = -EFBIG;
	if (st.st_size > TZ_FILE_MAX_BYTES)
		goto out;
	r = -ENOMEM;
	if (!(*buf = malloc(st.st_size ? (size_t)st.st_size : 1)))
		goto out;
	*len = 0;
	while (*len < (size_t)st.st_size) {
		ssize_t got = read(fd, *buf + *len, (size_t)st.st_size - *len);
		if (got <= 0) {
			r = got < 0 ? -errno : -EIO;
			goto out;
		}
		*len += (size_t)got;
	}
	r = 0;
out:
	if (r < 0) {
		free(*buf);
		*buf = NULL;
	}
	close(fd);
	return r;
}

int tz_load(const char *name, struct tz **out, char *err, size_t errlen)
{
	const char *dir = getenv("TZDIR");
	char path[PATH_MAX];
	unsigned char *buf;
	size_t len;
	int r;

	*out = NULL;
	if (!dir || !*dir)
		dir = TZ_DEFAULT_DIR;
	r = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!name_ok(name) || r < 0 || (size_t)r >= sizeof(path)) {
		snprintf(err, errlen, "not a time zone name");
		return -ENOENT;
	}
	if ((r = slurp(path, &buf, &len)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r == -EFBIG || r == -EIO ? -EINVAL : r;
	}
	struct tz *z = calloc(1, sizeof(*z));
	const char *why = !z || !(z->name = strdup(name)) ? TZ_OOM : parse(z, buf, len);
	free(buf);
	if (!why) {
		*out = z;
		return 0;
	}
	snprintf(err, errlen, "%s: %s", path, why);
	tz_free(z);
	return why == TZ_OOM ? -ENOMEM : why == TZ_NOT_TZIF ? -ENOENT : -EINVAL;
}

int tz_get(struct tz **zones, const char *name, const struct tz **out, char *err, size_t errlen)
{
	for (struct tz *z = *zones; z; z = z->next) {
		if (strcmp(z->name, name) == 0) {
			*out = z;
			return 0;
		}
	}
	struct tz *z;
	int r = tz_load(name, &z, err, errlen);
	if (r < 0)
		return r;
	z->next = *zones;
	*zones = z;
	*out = z;
	return 0;
}

void tz_free(struct tz *zones)
{
	while (zones) {
		struct tz *next = zones->next;
		free(zones->name);
		free(zones->at);
		free(zones->idx);
		free(zones->types);
		free(zones->chars);
		free(zones);
		zones = next;
	}
}

const struct tz *tz_utc(void)
{
	static const struct tz_type utc_type = { 0, false, 0 };
	static const struct tz utc = { .name = "UTC", .n_types = 1,
				       .types = (struct tz_type *)&utc_type, .chars = "UTC" };
	return &utc;
}

const char *tz_name(const struct tz *z)
{
	return z->name;
}

/* ---- lookups ---- */

/* The instant year y's change w happens, for a clock at offset off before it. */
static int64_t when_utc(const struct tz_when *w, int64_t y, int32_t off)
{
	int64_t day;
	if (w->kind == 'J') {
		day = civil_days(y, 1, 1) + w->n - 1 + (civil_leap(y) && w->n >= 60);
	} else if (w->kind == 'D') {
		day = civil_days(y, 1, 1) + w->n;
	} else {
		int64_t first = civil_days(y, w->m, 1);
		day = first + (w->d - civil_weekday(first) + 7) % 7 + 7 * (w->w - 1);
		while (day >= first + civil_month_days(y, w->m)) /* "5" is the month's last */
			day -= 7;
	}
	return day * CIVIL_DAY_SEC + w->secs - off;
}

struct change {
	int64_t at;
	bool dst; /* daylight time from at on */
};

/*
 * The rule's changes of the years around t, ascending; at equal instants an
 * end sorts before a start, so a zone on daylight time all year (a start at
 * the end of the year before) stays on it.
 */
static size_t rule_changes(const struct tz_rule *r, int64_t t, struct change ch[8])
{
	int64_t y, yy;
	int mo, d;
	size_t n = 0;
	civil_date(civil_day_of(t), &y, &mo, &d);
	for (yy = y - 2; yy <= y + 1; yy++) {
		struct change add[2] = { { when_utc(&r->start, yy, r->std_off), true },
					 { when_utc(&r->end, yy, r->dst_off), false } };
		for (int k = 0; k < 2; k++) {
			size_t i = n++;
			while (i > 0 && (ch[i - 1].at > add[k].at ||
					 (ch[i - 1].at == add[k].at && ch[i - 1].dst && !add[k].dst))) {
				ch[i] = ch[i - 1];
				i--;
			}
			ch[i] = add[k];
		}
	}
	return n;
}

static int64_t clamp_rule_t(int64_t t)
{
	return t > TZ_RULE_T_MAX ? TZ_RULE_T_MAX : t < -TZ_RULE_T_MAX ? -TZ_RULE_T_MAX : t;
}

static bool rule_dst(const struct tz_rule *r, int64_t t)
{
	struct change ch[8];
	size_t n = rule_changes(r, clamp_rule_t(t), ch);
	bool dst = !ch[0].dst;
	for (size_t i = 0; i < n && ch[i].at <= clamp_rule_t(t); i++)
		dst = ch[i].dst;
	return dst;
}

/* The rule's first change of offset after t, or INT64_MAX. */
static int64_t rule_next(const struct tz_rule *r, int64_t t)
{
	if (!r->has_dst || t >= TZ_RULE_T_MAX)
		return INT64_MAX;
	struct change ch[8];
	size_t n = rule_changes(r, clamp_rule_t(t), ch);
	bool dst = rule_dst(r, t);
	for (size_t i = 0; i < n; i++)
		if (ch[i].at > t && ch[i].dst != dst)
			return ch[i].at;
	return INT64_MAX;
}

static bool by_rule(const struct tz *z, int64_t t)
{
	return z->rule.present && (z->n == 0 || t >= z->at[z->n - 1]);
}

/* The number of transitions at or before t. */
static size_t passed(const struct tz *z, int64_t t)
{
	size_t lo = 0, hi = z->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->at[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void tz_at(const struct tz *z, int64_t t, struct tz_local *out)
{
	if (by_rule(z, t)) {
		const struct tz_rule *r = &z->rule;
		bool dst = r->has_dst && rule_dst(r, t);
		out->utoff = dst ? r->dst_off : r->std_off;
		out->isdst = dst;
		out->abbr = dst ? r->dst_abbr : r->std_abbr;
		return;
	}
	size_t i = passed(z, t);
	/* before the first transition: type 0 (RFC 8536 §3.2) */
	const struct tz_type *ty = &z->types[i ? z->idx[i - 1] : 0];
	out->utoff = ty->utoff;
	out->isdst = ty->isdst;
	out->abbr = z->chars + ty->abbr;
}

/* The first instant after t where the zone's local time type may change, or INT64_MAX. */
static int64_t next_change(const struct tz *z, int64_t t)
{
	if (by_rule(z, t))
		return rule_next(&z->rule, t);
	size_t i = passed(z, t);
	return i < z->n ? z->at[i] : INT64_MAX;
}

/*
 * Walk the stretches of constant offset from a day and more before wall on:
 * the first whose clock shows wall holds its first occurrence; a wall time
 * that falls between two stretches was skipped, and the offset before the
 * skip moves it forward by the skip.
 */
int64_t tz_from_wall(const struct tz *z, int64_t wall)
{
	int64_t s = wall - TZ_UTOFF_MAX; /* no stretch shows wall before this instant */
	struct tz_local cur;
	long before;

	tz_at(z, s, &cur);
	before = cur.utoff;
	for (;;) {
		int64_t e = next_change(z, s), u = wall - cur.utoff;
		if (u < s)
			return wall - before;
		if (u < e)
			return u;
		before = cur.utoff;
		s = e;
		tz_at(z, s, &cur);
	}
}
