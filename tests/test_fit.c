/* test_fit.c - return reason classes: a table over the 14 languages, codes, the [fit] keys, the mirror. */
#include <jansson.h>

#include "unit.h"
#include "unit_sql.h"

#include "canon.h"
#include "config.h"
#include "fit.h"
#include "store.h"

/* lib/fit/phrases.json as built in. */
extern const char fit_phrases_json[];

static const char *const languages[CONFIG_LANG_MAX] = {
	"fr", "en", "de", "it", "ja", "ko", "pt", "br", "es", "pl", "sv", "da", "nl", "fi",
};

/* Labels as merchants write them, in every language kleepd serves (DOMAIN.md §2). */
static const struct {
	const char *lang, *label;
	enum fit_class want;
} table[] = {
	{ "fr", "Trop petit", FIT_TOO_SMALL },        { "fr", "Article trop grand", FIT_TOO_LARGE },
	{ "fr", "Taille trop petite", FIT_TOO_SMALL }, { "fr", "Trop long", FIT_OTHER_FIT },
	{ "fr", "Changement d’avis", FIT_NOT_FIT },    { "fr", "Non conforme à la description", FIT_NOT_FIT },
	{ "fr", "Livraison trop tardive", FIT_NOT_FIT },
	{ "en", "Too small", FIT_TOO_SMALL },          { "en", "TOO BIG", FIT_TOO_LARGE },
	{ "en", "Too tight around the chest", FIT_TOO_SMALL }, { "en", "Wrong size", FIT_OTHER_FIT },
	{ "en", "Damaged item", FIT_NOT_FIT },         { "en", "Arrived too late", FIT_NOT_FIT },
	{ "de", "Zu klein", FIT_TOO_SMALL },           { "de", "ZU GROSS", FIT_TOO_LARGE },
	{ "de", "Zu groß", FIT_TOO_LARGE },            { "de", "Passt nicht", FIT_OTHER_FIT },
	{ "de", "Beschädigt", FIT_NOT_FIT },
	{ "it", "Troppo piccolo", FIT_TOO_SMALL },     { "it", "Troppo grande", FIT_TOO_LARGE },
	{ "it", "Troppo lunga", FIT_OTHER_FIT },       { "it", "Articolo danneggiato", FIT_NOT_FIT },
	{ "ja", "小さい", FIT_TOO_SMALL },              { "ja", "サイズが小さすぎる", FIT_TOO_SMALL },
	{ "ja", "大きすぎる", FIT_TOO_LARGE },          { "ja", "丈が長い", FIT_OTHER_FIT },
	{ "ja", "破損", FIT_NOT_FIT },
	{ "ko", "작아요", FIT_TOO_SMALL },              { "ko", "사이즈가 커요", FIT_TOO_LARGE },
	{ "ko", "길어요", FIT_OTHER_FIT },              { "ko", "단순 변심", FIT_NOT_FIT },
	{ "pt", "Demasiado pequeno", FIT_TOO_SMALL },  { "pt", "Muito grande", FIT_TOO_LARGE },
	{ "pt", "Tamanho errado", FIT_OTHER_FIT },     { "pt", "Artigo danificado", FIT_NOT_FIT },
	{ "br", "Ficou pequeno", FIT_TOO_SMALL },      { "br", "Grande demais", FIT_TOO_LARGE },
	{ "br", "Muito comprido", FIT_OTHER_FIT },     { "br", "Mudei de ideia", FIT_NOT_FIT },
	{ "es", "Demasiado pequeño", FIT_TOO_SMALL },  { "es", "DEMASIADO GRANDE", FIT_TOO_LARGE },
	{ "es", "Talla incorrecta", FIT_OTHER_FIT },   { "es", "Cambié de opinión", FIT_NOT_FIT },
	{ "pl", "Za mały", FIT_TOO_SMALL },            { "pl", "ZA DUŻY", FIT_TOO_LARGE },
	{ "pl", "Za długie", FIT_OTHER_FIT },          { "pl", "Produkt uszkodzony", FIT_NOT_FIT },
	{ "sv", "För liten", FIT_TOO_SMALL },          { "sv", "FÖR STOR", FIT_TOO_LARGE },
	{ "sv", "Fel storlek", FIT_OTHER_FIT },        { "sv", "Ångrat köp", FIT_NOT_FIT },
	{ "da", "For lille", FIT_TOO_SMALL },          { "da", "For stor", FIT_TOO_LARGE },
	{ "da", "Forkert størrelse", FIT_OTHER_FIT },  { "da", "Beskadiget vare", FIT_NOT_FIT },
	{ "nl", "Te klein", FIT_TOO_SMALL },           { "nl", "Te groot", FIT_TOO_LARGE },
	{ "nl", "Verkeerde maat", FIT_OTHER_FIT },     { "nl", "Te laat geleverd", FIT_NOT_FIT },
	{ "fi", "Liian pieni", FIT_TOO_SMALL },        { "fi", "Liian iso", FIT_TOO_LARGE },
	{ "fi", "Väärä koko", FIT_OTHER_FIT },         { "fi", "Viallinen tuote", FIT_NOT_FIT },
	/* Nothing to go by: unclassified, listed by kleepctl check. */
	{ "en", "Reason 8", FIT_NONE },                { "fr", "Motif 8 (précisé)", FIT_NONE },
	/* A phrase starts a word: "conforme" is not "forme", "chocolate" is not "late". */
	{ "fr", "Non conforme", FIT_NOT_FIT },         { "en", "Chocolate stain", FIT_NONE },
};

static void test_every_label(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const char *labels[] = { table[i].label };
		enum fit_class got = fit_classify(NULL, labels, 1);
		if (got != table[i].want) {
			print_error("%s \"%s\": got %s, want %s\n", table[i].lang, table[i].label,
				    fit_class_name(got) ? fit_class_name(got) : "unclassified",
				    fit_class_name(table[i].want) ? fit_class_name(table[i].want) : "unclassified");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* The table covers each language with both directions, and the data file every language and class. */
static void test_fourteen_languages(void **state)
{
	(void)state;
	json_t *root = json_loads(fit_phrases_json, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(root);
	for (int l = 0; l < CONFIG_LANG_MAX; l++) {
		bool small = false, large = false;
		for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
			if (strcmp(table[i].lang, languages[l]) == 0) {
				small |= table[i].want == FIT_TOO_SMALL;
				large |= table[i].want == FIT_TOO_LARGE;
			}
		if (!small || !large)
			fail_msg("the table lacks %s too small or too large", languages[l]);
		for (int f = 0; f < FIT_CLASS_COUNT; f++) {
			json_t *list = json_object_get(json_object_get(root, fit_class_name(f)), languages[l]);
			if (!json_array_size(list))
				fail_msg("lib/fit/phrases.json: %s has no %s phrase", fit_class_name(f), languages[l]);
		}
	}
	json_decref(root);
}

static void test_codes_and_several_labels(void **state)
{
	(void)state;
	/* A code alone: underscores and dashes read as spaces. */
	assert_int_equal(fit_classify("too_small", NULL, 0), FIT_TOO_SMALL);
	assert_int_equal(fit_classify("TOO-BIG", NULL, 0), FIT_TOO_LARGE);
	assert_int_equal(fit_classify("changed_mind", NULL, 0), FIT_NOT_FIT);
	/* A merchant's own code says nothing: its labels decide. */
	const char *r07[] = { "Trop petit", NULL, "Too small" };
	assert_int_equal(fit_classify("R07", r07, 3), FIT_TOO_SMALL);
	assert_int_equal(fit_classify("R07", NULL, 0), FIT_NONE);
	/* Both directions: a fit problem, not one of them. */
	const char *both[] = { "Trop petit ou trop grand" };
	assert_int_equal(fit_classify(NULL, both, 1), FIT_OTHER_FIT);
	/* A direction beats a generic size problem and a non-fit one. */
	const char *mixed[] = { "Mauvaise taille : trop petit", "Colour" };
	assert_int_equal(fit_classify(NULL, mixed, 2), FIT_TOO_SMALL);
	const char *fit_and_not[] = { "Wrong size", "Damaged" };
	assert_int_equal(fit_classify(NULL, fit_and_not, 2), FIT_OTHER_FIT);
}

static void test_override_keys(void **state)
{
	(void)state;
	char *ov[FIT_CLASS_COUNT] = { "R07, 2", "R08", "r09", "damaged ,x" };
	/* Every key is a class name and back. */
	for (int f = 0; f < FIT_CLASS_COUNT; f++)
		assert_int_equal(fit_class_from_name(fit_class_name(f)), f);
	assert_int_equal(fit_class_from_name("too_tight"), FIT_NONE);
	assert_null(fit_class_name(FIT_NONE));
	assert_int_equal(fit_override(ov, "17", "R07"), FIT_TOO_SMALL); /* by code */
	assert_int_equal(fit_override(ov, "2", "whatever"), FIT_TOO_SMALL);  /* by id */
	assert_int_equal(fit_override(ov, "R08", NULL), FIT_TOO_LARGE);
	assert_int_equal(fit_override(ov, "5", "R09"), FIT_OTHER_FIT);      /* case does not matter */
	assert_int_equal(fit_override(ov, "3", "DAMAGED"), FIT_NOT_FIT);
	assert_int_equal(fit_override(ov, "x", NULL), FIT_NOT_FIT);
	assert_int_equal(fit_override(ov, "4", "R1"), FIT_NONE);
	/* An id listed in one class wins over the code listed in another. */
	assert_int_equal(fit_override(ov, "2", "R08"), FIT_TOO_SMALL);
	char *none[FIT_CLASS_COUNT] = { NULL };
	assert_int_equal(fit_override(none, "2", "R07"), FIT_NONE);

	char tok[16];
	const char *p = fit_list_next(" a , bb,,c ", tok, sizeof(tok));
	assert_string_equal(tok, "a");
	p = fit_list_next(p, tok, sizeof(tok));
	assert_string_equal(tok, "bb");
	p = fit_list_next(p, tok, sizeof(tok));
	assert_string_equal(tok, "");
	p = fit_list_next(p, tok, sizeof(tok));
	assert_string_equal(tok, "c");
	assert_null(fit_list_next(p, tok, sizeof(tok)));
}

/* In a mirror: the class and who decided it, for reasons written before and after the labels. */
static void test_mirror(void **state)
{
	(void)state;
	char *dir = unit_tmpdir(), *path, err[256];
	struct store *st;
	assert_true(asprintf(&path, "%s/m.db", dir) > 0);
	assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
	const char *r1[RR_COUNT] = { "1", "too_small", "Trop petit" };
	const char *r7[RR_COUNT] = { "R07", "R07", NULL };
	const char *r9[RR_COUNT] = { "R09", "R09", "Autre" };
	const char *l7[L_COUNT] = { "return_reason", "R07", "en", "label", "Too large" };
	assert_int_equal(canon_put(st, CANON_RETURN_REASONS, r1, "api", NULL), 0);
	assert_int_equal(canon_put(st, CANON_RETURN_REASONS, r7, "sftp", NULL), 0);
	assert_int_equal(canon_put(st, CANON_RETURN_REASONS, r9, "sftp", NULL), 0);
	assert_int_equal(canon_put(st, CANON_LABELS, l7, "sftp", NULL), 0);
	char *none[FIT_CLASS_COUNT] = { NULL };
	assert_int_equal(fit_reason_update(st, none, "R07"), 0);
	assert_int_equal(fit_reason_update(st, none, "no-such-reason"), 0);
	unit_expect_rows(store_db(st), "SELECT reason_id, fit, fit_source FROM return_reasons ORDER BY 1",
			 "1|~|~\nR07|too_large|default\nR09|~|~\n");
	/* Every reason again, with the merchant's [fit]: R09 is theirs, and R07 too. */
	char *ov[FIT_CLASS_COUNT] = { "R07", NULL, NULL, "r09" };
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(fit_refresh(st, ov), 0);
	assert_int_equal(store_commit(st), 0);
	unit_expect_rows(store_db(st), "SELECT reason_id, fit, fit_source FROM return_reasons ORDER BY 1",
			 "1|too_small|default\nR07|too_small|config\nR09|not_fit|config\n");
	/* The override removed: back to the default, and unclassified again. */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(fit_refresh(st, none), 0);
	assert_int_equal(store_commit(st), 0);
	unit_expect_rows(store_db(st), "SELECT reason_id, fit, fit_source FROM return_reasons ORDER BY 1",
			 "1|too_small|default\nR07|too_large|default\nR09|~|~\n");
	store_close(st);
	free(path);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_label),
		cmocka_unit_test(test_fourteen_languages),
		cmocka_unit_test(test_codes_and_several_labels),
		cmocka_unit_test(test_override_keys),
		cmocka_unit_test(test_mirror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
