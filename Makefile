# kleepd - mirror WSHOP shops into SQLite.  `make run` for the demo, `make check` for the tests.

VERSION     := 0.1.0
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DESTDIR     ?=

BUILD ?= build
PY    := /usr/bin/python3
V     ?=
Q     := $(if $(V),,@)

# Debian packages the build, the tests and the demo need (`make deps` installs the missing ones).
DEB_PACKAGES := build-essential pkg-config python3 sqlite3 tzdata \
	libcurl4-openssl-dev libjansson-dev libssh2-1-dev libsqlite3-dev libsystemd-dev \
	libinih-dev libcsv-dev libcmocka-dev libssl-dev openssh-server openssh-client systemd
PKGS := libcurl jansson libssh2 sqlite3 libsystemd inih libcrypto

CC      ?= cc
OPT     ?= -O2
SAN     ?=
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN) -Ilib -I$(BUILD)/gen \
	-DKLEEP_VERSION='"$(VERSION)"' -DKLEEP_DATADIR='"$(DATADIR)/kleep"' \
	-DKLEEP_SYSCONFDIR='"$(SYSCONFDIR)/kleep"' \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := -Wl,--as-needed $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lpthread -lm
TEST_LDLIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

LIB_SRC  := $(sort $(wildcard lib/*.c))
LIB_OBJ  := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o) $(BUILD)/gen/migrations.o $(BUILD)/gen/profiles.o
PROFILES := $(sort $(wildcard lib/profiles/*.json))
SQL      := $(sort $(wildcard sql/[0-9][0-9][0-9]_*.sql))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BINS     := $(BUILD)/kleepd $(BUILD)/kleepctl

.PHONY: all deps check check-asan check-tsan test run bench fuzz install clean
.DELETE_ON_ERROR:

all: $(BINS) $(TESTS)
	@chmod go-rwx examples/*.password examples/*.key 2>/dev/null || true

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "make deps: missing Debian packages: $$missing"; \
		echo "make deps: run 'sudo make deps' (or apt-get install them) and try again"; exit 1; fi; \
	echo "make deps: installing $$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h) | $(BUILD)/lib $(BUILD)/gen/migrations.h
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/gen/migrations.c $(BUILD)/gen/migrations.h &: $(SQL) sql/embed.sh | $(BUILD)/gen
	@echo "  EMBED   $(SQL)"
	$(Q)sh sql/embed.sh $(BUILD)/gen/migrations $(SQL)

$(BUILD)/gen/profiles.c: $(PROFILES) lib/profiles/embed.sh | $(BUILD)/gen
	@echo "  EMBED   $(PROFILES)"
	$(Q)sh lib/profiles/embed.sh $@ $(PROFILES)

$(BUILD)/gen/profiles.o: $(BUILD)/gen/profiles.c
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libkleep.a: $(LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

KLEEPD_SRC := $(filter-out daemon/kleepctl.c,$(sort $(wildcard daemon/*.c)))

$(BUILD)/kleepd: $(KLEEPD_SRC) $(wildcard daemon/*.h) $(BUILD)/libkleep.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Idaemon -o $@ $(KLEEPD_SRC) $(BUILD)/libkleep.a $(LDLIBS)

$(BUILD)/kleepctl: daemon/kleepctl.c $(BUILD)/libkleep.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Idaemon -o $@ $< $(BUILD)/libkleep.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libkleep.a tests/unit.h tests/unit_sql.h | $(BUILD)/tests
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(BUILD)/libkleep.a $(LDLIBS) $(TEST_LDLIBS)

$(BUILD)/lib $(BUILD)/gen $(BUILD)/tests:
	mkdir -p $@

# Unit tests, golden config tests and integration tests against the built binaries.
test: all
	@BUILD=$(BUILD) PY=$(PY) sh tests/run.sh

check: deps
	$(MAKE) test
	$(MAKE) check-asan
	$(MAKE) check-tsan

check-asan:
	$(MAKE) BUILD=build/asan OPT=-O1 \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

check-tsan:
	$(MAKE) BUILD=build/tsan OPT=-O1 SAN="-fsanitize=thread -fno-omit-frame-pointer" all
	@BUILD=build/tsan PY=$(PY) sh tests/tsan/run.sh

run: deps all
	@BUILD=$(BUILD) $(PY) tests/demo/run.py

bench: all
	@BUILD=$(BUILD) PY=$(PY) sh tests/bench/run.sh

fuzz:
	@BUILD=$(BUILD) sh tests/fuzz/run.sh

install: all
	install -Dm755 $(BUILD)/kleepd $(DESTDIR)$(SBINDIR)/kleepd
	install -Dm755 $(BUILD)/kleepctl $(DESTDIR)$(BINDIR)/kleepctl
	install -Dm644 examples/kleepd.conf $(DESTDIR)$(SYSCONFDIR)/kleep/kleepd.conf.example
	install -Dm644 examples/merchants.d/acme-fr.conf $(DESTDIR)$(SYSCONFDIR)/kleep/merchants.d/acme-fr.conf.example
	for p in $(PROFILES); do install -Dm644 $$p $(DESTDIR)$(DATADIR)/kleep/profiles/$${p##*/}; done
	for m in $(wildcard man/*.[1-8]); do s=$${m##*.}; install -Dm644 $$m $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done
	for u in $(wildcard systemd/*.service systemd/*.socket); do \
		sed -e 's|/usr/sbin/kleepd|$(SBINDIR)/kleepd|g' -e 's|/etc/kleep|$(SYSCONFDIR)/kleep|g' $$u >$$u.tmp && \
		install -Dm644 $$u.tmp $(DESTDIR)$(UNITDIR)/$${u##*/} && rm -f $$u.tmp; done
	install -Dm644 man/kleepctl.bash-completion $(DESTDIR)$(DATADIR)/bash-completion/completions/kleepctl
	[ ! -f systemd/kleep.sysusers ] || install -Dm644 systemd/kleep.sysusers $(DESTDIR)$(SYSUSERSDIR)/kleep.conf
	[ ! -f systemd/kleep.tmpfiles ] || install -Dm644 systemd/kleep.tmpfiles $(DESTDIR)$(TMPFILESDIR)/kleep.conf

clean:
	rm -rf build demo
