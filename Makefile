# kleepd - mirror WSHOP shops into SQLite.  `make run` for the demo, `make check` for the tests.

VERSION     := 0.1.0
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
DOCDIR      ?= $(DATADIR)/doc/kleepd
SYSCONFDIR  ?= /etc
DESTDIR     ?=
# Where systemd itself looks, as its pkg-config file says (read when install runs).
UNITDIR     ?= $(call systemd_dir,systemdsystemunitdir,$(PREFIX)/lib/systemd/system)
SYSUSERSDIR ?= $(call systemd_dir,sysusersdir,$(PREFIX)/lib/sysusers.d)
TMPFILESDIR ?= $(call systemd_dir,tmpfilesdir,$(PREFIX)/lib/tmpfiles.d)
CATALOGDIR  ?= $(call systemd_dir,catalogdir,$(PREFIX)/lib/systemd/catalog)
systemd_dir = $(or $(shell pkg-config --variable=$(1) systemd 2>/dev/null),$(2))

BUILD ?= build
PY    := /usr/bin/python3
V     ?=
Q     := $(if $(V),,@)

# Debian packages the build, the tests, the lint step and the demo need (`make deps`
# installs the missing ones); `make deb` and `make check-package` also need PACKAGING.
DEB_PACKAGES := build-essential pkg-config python3 sqlite3 tzdata \
	libcurl4-openssl-dev libjansson-dev libssh2-1-dev libsqlite3-dev libsystemd-dev \
	libinih-dev libcsv-dev libcmocka-dev libssl-dev openssh-server openssh-client systemd \
	mandoc shellcheck prometheus gdb
PACKAGING    := debhelper dpkg-dev lintian mmdebstrap
PKGS := libcurl jansson libssh2 sqlite3 libsystemd inih libcrypto

# CPPFLAGS, CFLAGS and LDFLAGS from the environment or the command line are honoured
# (e.g. Debian's dpkg-buildflags); WERROR=0 keeps warnings as warnings.
CC      ?= cc
OPT     ?= -O2
SAN     ?=
WERROR  ?= 1
WARN    := -Wall -Wextra $(if $(filter 0,$(WERROR)),,-Werror) -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS  ?= $(OPT) -g
CPPFLAGS ?=
LDFLAGS ?=
# The libraries are asked of pkg-config when the first recipe needs them, not when this
# file is read: on a bare machine `make deps` has only just installed them.
pkg_cflags = $(eval pkg_cflags := $(call pkg_config,--cflags $(PKGS)))$(pkg_cflags)
pkg_libs   = $(eval pkg_libs := $(call pkg_config,--libs $(PKGS)))$(pkg_libs)
test_libs  = $(eval test_libs := $(call pkg_config,--libs cmocka))$(test_libs)
pkg_config = $(call pkg_checked,$(shell pkg-config $(1) 2>/dev/null || echo PKG-CONFIG-FAILED),$(1))
pkg_checked = $(if $(filter PKG-CONFIG-FAILED,$(1)),$(error pkg-config $(2) failed: a library \
	or pkg-config is missing; `make deps` installs them),$(1))
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) $(SAN) -Ilib -I$(BUILD)/gen \
	-DKLEEP_VERSION='"$(VERSION)"' -DKLEEP_DATADIR='"$(DATADIR)/kleep"' \
	-DKLEEP_SYSCONFDIR='"$(SYSCONFDIR)/kleep"' $(pkg_cflags)
LDLIBS  = $(LDFLAGS) -Wl,--as-needed $(pkg_libs) -lcsv -lpthread -lm
TEST_LDLIBS = $(test_libs)

LIB_SRC  := $(sort $(wildcard lib/*.c))
LIB_OBJ  := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o) $(BUILD)/gen/migrations.o $(BUILD)/gen/profiles.o \
	$(BUILD)/gen/fit_phrases.o
PROFILES := $(sort $(wildcard lib/profiles/*.json))
SQL      := $(sort $(wildcard sql/[0-9][0-9][0-9]_*.sql))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_BINS := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# Each fuzz target also as a plain program that replays its corpus (tests/fuzz/replay.c).
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/%)
BINS     := $(BUILD)/kleepd $(BUILD)/kleepctl
# The test-only SQLite VFS that fails the N-th write (tests LD_PRELOAD it into kleepd).
FAULTVFS := $(BUILD)/tests/faultvfs.so

# alt.json is a test profile: built in, never installed.
INSTALL_PROFILES := $(filter-out lib/profiles/alt.json,$(PROFILES))
COMPLETIONSDIR ?= $(or $(shell pkg-config --variable=completionsdir bash-completion 2>/dev/null),$(DATADIR)/bash-completion/completions)
SHELL_SCRIPTS = $(shell grep -rlE --exclude-dir=.git --exclude-dir=build --exclude-dir=demo \
	'^\#!/bin/(ba|da)?sh' .ci sql lib tests debian 2>/dev/null) man/kleepctl.bash-completion

.PHONY: all bins deps deps-packaging check check-asan check-hardening check-tsan test lint run bench fuzz \
	install deb check-package clean FORCE
.DELETE_ON_ERROR:

all: $(BINS) $(TEST_BINS) $(FUZZ_BINS) $(FAULTVFS)
	@chmod go-rwx examples/*.password examples/*.key 2>/dev/null || true

bins: $(BINS)

deps:
	@$(call apt_missing,$(DEB_PACKAGES))

deps-packaging: deps
	@$(call apt_missing,$(PACKAGING))

# Installs the Debian packages of $(1) that are missing (as root; says what to do otherwise).
apt_missing = missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "make deps: missing Debian packages: $$missing"; \
		echo "make deps: run 'sudo make deps' (or apt-get install them) and try again"; exit 1; fi; \
	echo "make deps: installing $$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing

# The paths and version baked into the binaries: rewritten only when they change, so a
# `make install PREFIX=/usr` after `make all` rebuilds what would look in the wrong place.
$(BUILD)/gen/paths: FORCE | $(BUILD)/gen
	@printf '%s\n' '$(VERSION)' '$(DATADIR)' '$(SYSCONFDIR)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h) $(BUILD)/gen/paths | $(BUILD)/lib $(BUILD)/gen/migrations.h
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The embedded files' names, rewritten only when the list changes: a migration or a
# profile removed (a checkout of an older revision) embeds the data again too.
$(BUILD)/gen/embedded: FORCE | $(BUILD)/gen
	@printf '%s\n' $(SQL) $(PROFILES) >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(BUILD)/gen/migrations.c $(BUILD)/gen/migrations.h &: $(SQL) sql/embed.sh $(BUILD)/gen/embedded | $(BUILD)/gen
	@echo "  EMBED   $(SQL)"
	$(Q)sh sql/embed.sh $(BUILD)/gen/migrations $(SQL)

$(BUILD)/gen/profiles.c: $(PROFILES) lib/profiles/embed.sh $(BUILD)/gen/embedded | $(BUILD)/gen
	@echo "  EMBED   $(PROFILES)"
	$(Q)sh lib/profiles/embed.sh $@ $(PROFILES)

# Return reason phrases for the default fit classes (lib/fit.c).
$(BUILD)/gen/fit_phrases.c: lib/fit/phrases.json lib/fit/embed.sh | $(BUILD)/gen
	@echo "  EMBED   lib/fit/phrases.json"
	$(Q)sh lib/fit/embed.sh $@ fit_phrases_json lib/fit/phrases.json

$(BUILD)/gen/fit_phrases.o: $(BUILD)/gen/fit_phrases.c
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/gen/profiles.o: $(BUILD)/gen/profiles.c
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libkleep.a: $(LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

KLEEPD_SRC := $(filter-out daemon/kleepctl.c,$(sort $(wildcard daemon/*.c)))

$(BUILD)/kleepd: $(KLEEPD_SRC) $(wildcard daemon/*.h) $(BUILD)/libkleep.a $(BUILD)/gen/paths
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Idaemon -o $@ $(KLEEPD_SRC) $(BUILD)/libkleep.a $(LDLIBS)

$(BUILD)/kleepctl: daemon/kleepctl.c $(BUILD)/libkleep.a $(BUILD)/gen/paths
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Idaemon -o $@ $< $(BUILD)/libkleep.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libkleep.a $(wildcard tests/*.h) | $(BUILD)/tests
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(BUILD)/libkleep.a $(LDLIBS) $(TEST_LDLIBS)

$(BUILD)/tests/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(BUILD)/libkleep.a | $(BUILD)/tests
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/replay.c $(BUILD)/libkleep.a $(LDLIBS)

# No sanitizer inside: it is preloaded ahead of the sanitizer runtime.
$(FAULTVFS): tests/faultvfs.c | $(BUILD)/tests
	@echo "  LD      $@"
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC -shared -o $@ $< \
		$(shell pkg-config --cflags --libs sqlite3 2>/dev/null)

$(BUILD)/lib $(BUILD)/gen $(BUILD)/tests:
	mkdir -p $@

# Unit tests, golden config tests and integration tests against the built binaries.
test: all
	@BUILD=$(BUILD) PY=$(PY) sh tests/run.sh

# Each step is a new make: it sees the libraries `deps` has just installed.
check: deps
	$(MAKE) test
	$(MAKE) check-asan
	$(MAKE) lint
	$(MAKE) check-hardening
	$(MAKE) check-tsan

check-asan:
	$(MAKE) BUILD=build/asan OPT=-O1 \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

# Man pages and shell scripts, as a distribution's linters read them.
lint:
	mandoc -T lint -W warning man/*.[1-8]
	shellcheck $(SHELL_SCRIPTS)

# A release build with Debian's hardening flags: BIND_NOW, fortified libc calls.
check-hardening:
	@sh tests/package/hardening.sh build/release

check-tsan:
	$(MAKE) BUILD=build/tsan OPT=-O1 SAN="-fsanitize=thread -fno-omit-frame-pointer" all
	@BUILD=build/tsan PY=$(PY) sh tests/tsan/run.sh

run: deps
	$(MAKE) all
	@BUILD=$(BUILD) $(PY) tests/demo/run.py

bench: all
	@BUILD=$(BUILD) PY=$(PY) sh tests/bench/run.sh

# libFuzzer needs the library instrumented too: built once, with clang, beside the others.
FUZZ_CC ?= clang
fuzz:
	$(MAKE) BUILD=build/fuzz-lib CC=$(FUZZ_CC) OPT=-O1 \
		SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
		build/fuzz-lib/libkleep.a
	@BUILD=$(BUILD) FUZZ_LIB=build/fuzz-lib FUZZ_CC=$(FUZZ_CC) sh tests/fuzz/run.sh

# Installs only what it builds; the configuration only when there is none (an upgrade
# never overwrites the operator's), its examples with the docs.
install: bins
	install -Dm755 $(BUILD)/kleepd $(DESTDIR)$(SBINDIR)/kleepd
	install -Dm755 $(BUILD)/kleepctl $(DESTDIR)$(BINDIR)/kleepctl
	[ -e $(DESTDIR)$(SYSCONFDIR)/kleep/kleepd.conf ] || \
		{ sed 's|@DOCDIR@|$(DOCDIR)|g' etc/kleepd.conf >$(BUILD)/kleepd.conf && \
		install -Dm644 $(BUILD)/kleepd.conf $(DESTDIR)$(SYSCONFDIR)/kleep/kleepd.conf; }
	install -d $(DESTDIR)$(SYSCONFDIR)/kleep/merchants.d
	for p in $(INSTALL_PROFILES); do install -Dm644 $$p $(DESTDIR)$(DATADIR)/kleep/profiles/$${p##*/} || exit 1; done
	for m in $(wildcard man/*.[1-8]); do s=$${m##*.}; install -Dm644 $$m $(DESTDIR)$(MANDIR)/man$$s/$${m##*/} || exit 1; done
	for u in $(wildcard systemd/*.service systemd/*.socket); do \
		sed -e 's|/usr/sbin/kleepd|$(SBINDIR)/kleepd|g' -e 's|/etc/kleep|$(SYSCONFDIR)/kleep|g' \
			$$u >$(BUILD)/$${u##*/} && install -Dm644 $(BUILD)/$${u##*/} $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; done
	install -Dm644 man/kleepctl.bash-completion $(DESTDIR)$(COMPLETIONSDIR)/kleepctl
	install -Dm644 systemd/kleep.sysusers $(DESTDIR)$(SYSUSERSDIR)/kleep.conf
	install -Dm644 systemd/kleep.tmpfiles $(DESTDIR)$(TMPFILESDIR)/kleep.conf
	install -Dm644 systemd/kleepd.catalog $(DESTDIR)$(CATALOGDIR)/kleepd.catalog
	install -Dm644 -t $(DESTDIR)$(DOCDIR) README.md LICENSE
	install -Dm644 -t $(DESTDIR)$(DOCDIR)/examples examples/kleepd.conf examples/prometheus/*.yml
	install -Dm644 -t $(DESTDIR)$(DOCDIR)/examples/merchants.d examples/merchants.d/*.conf

# The Debian package, built from a copy of this tree: build/kleepd_<version>_<arch>.deb.
deb: deps-packaging
	@sh tests/package/deb.sh $(BUILD)

# The package installed, checked, removed and purged on a bare Debian 12 root.
check-package: deb
	@bash tests/package/check.sh $(BUILD)

clean:
	rm -rf build demo
