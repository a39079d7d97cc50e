/* kleepctl.c - ask a running kleepd how every merchant's sync is doing. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("kleepctl %s\n", KLEEP_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: kleepctl --version\n");
	return 2;
}
