/* config_read.c - the lines of a config file as inih is given them: whole, checked, headers noted. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "config_priv.h"

/* inih's own scan for a delimiter that stops at an inline comment (" ;"). */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/*
 * Read one physical line whole into str (at most limit bytes kept, the
 * newline and a CR before it dropped); false at the end of the file.  The
 * line is counted, and when it is too long or holds a NUL or a control
 * character this says so and leaves str empty.
 */
static bool read_line(struct pfile *pf, char *str, size_t limit)
{
	size_t len = 0, stored = 0;
	bool any = false, nul = false, ctrl = false;
	int ch, last = 0;

	while ((ch = getc(pf->in)) != EOF) {
		any = true;
		if (ch == '\n')
			break;
		if (ch == '\0')
			nul = true;
		if (len < limit)
			str[stored++] = (char)ch;
		len++;
		last = ch;
	}
	if (!any) {
		if (ferror(pf->in))
			config_perr(pf, pf->line, "read error: %s", strerror(errno));
		return false;
	}
	pf->line++;
	if (last == '\r') /* CRLF files read like LF files */
		len--, stored = stored > len ? len : stored;
	str[stored] = '\0';
	for (size_t i = 0; i < stored; i++) {
		unsigned char c = (unsigned char)str[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			ctrl = true;
	}
	if (len > limit)
		config_perr(pf, pf->line, "line too long (more than %zu characters)", limit);
	else if (nul)
		config_perr(pf, pf->line, "NUL byte in line");
	else if (ctrl)
		config_perr(pf, pf->line, "control character in line");
	else
		return true;
	str[0] = '\0';
	return true;
}

/* A "[name]" line: the section begins; false (after saying why) when it is malformed. */
static bool header_line(struct pfile *pf, const char *str)
{
	const char *end = find_chars_or_comment(str + 1, "]");
	char name[64];
	const char *a = str + 1, *rest;
	size_t n;

	if (*end != ']') {
		config_perr(pf, pf->line, "expected ']' to close the section name");
		pf->sec = SEC_UNKNOWN; /* its keys would only add confusing errors */
		return false;
	}
	n = (size_t)(end - a);
	config_trim(&a, &n);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, a, n);
	name[n] = '\0';
	for (rest = end + 1; isspace((unsigned char)*rest); rest++)
		;
	if (*rest && *rest != ';' && *rest != '#')
		config_perr(pf, pf->line, "unexpected text after [%s]", name);
	config_section_begin(pf, name);
	return true;
}

/* A "key = value" line; false (after saying why) when it is neither that nor a header. */
static bool key_line(struct pfile *pf, const char *str)
{
	const char *eq = find_chars_or_comment(str, "=:");
	if (*eq != '=' && *eq != ':') {
		config_perr(pf, pf->line, "expected 'key = value', '[section]' or a comment");
		return false;
	}
	if (eq == str) {
		config_perr(pf, pf->line, "missing key name before '%c'", *eq);
		return false;
	}
	return true;
}

/*
 * The reader inih calls for each line.  It exists because inih alone cannot
 * tell the handler which line it is on, silently cuts long lines, stops a
 * string at a NUL byte, reports only its first syntax error, and never calls
 * the handler for a section header.  So here every physical line is read whole
 * (one call per line, keeping our count equal to inih's), a bad line is
 * reported and handed on blank, leading blanks are dropped (which also turns
 * off inih's indented continuation lines), and section headers are noted.
 */
char *config_reader(char *str, int num, void *user)
{
	struct pfile *pf = user;
	char *s;

	if (!read_line(pf, str, num > 1 ? (size_t)num - 1 : 0))
		return NULL;
	if (pf->line == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0)
		memmove(str, str + 3, strlen(str + 3) + 1);
	s = str;
	while (isspace((unsigned char)*s))
		s++;
	memmove(str, s, strlen(s) + 1);

	if (str[0] == '\0' || str[0] == ';' || str[0] == '#')
		return str;
	if (!(str[0] == '[' ? header_line(pf, str) : key_line(pf, str)))
		str[0] = '\0';
	return str;
}
