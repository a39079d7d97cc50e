/* hex.h - bytes as lowercase hexadecimal text. */
#ifndef KLEEP_HEX_H
#define KLEEP_HEX_H

#include <stddef.h>

/* Write the n bytes of in as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

#endif
