/* stream.h - the names of the data streams kleepd mirrors, shared by every module. */
#ifndef KLEEP_STREAM_H
#define KLEEP_STREAM_H

/*
 * One stream is one kind of record with its own cursor and timer.  The seven
 * API streams come first, in the order DOMAIN.md lists their endpoints, so
 * arrays indexed by stream can stop at STREAM_API_COUNT; the SFTP scan is a
 * stream of its own for scheduling and status.
 */
enum stream {
	STREAM_PRODUCTS,
	STREAM_SIZES,
	STREAM_DEPARTMENTS,
	STREAM_ATTRIBUTES,
	STREAM_ORDERS,
	STREAM_RETURNS,
	STREAM_RETURN_REASONS,
	STREAM_API_COUNT,
	STREAM_SFTP = STREAM_API_COUNT,
	STREAM_COUNT
};

/* "products", "return_reasons", "sftp", ...; never NULL for a valid stream. */
const char *stream_name(enum stream s);

/* The stream named s, or -1 when s names none. */
int stream_from_name(const char *s);

#endif
