/* Tiny helpers over libxml2 for reading S3's XML responses. */
#ifndef NEXUS_CLI_S3XML_H
#define NEXUS_CLI_S3XML_H
#include <stddef.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

/* Parses a response body without network access or entity expansion; NULL if not XML. */
xmlDocPtr s3xml_parse(const char *body, size_t len);
/* Text of the first child element NAME of `parent` (malloc'd), or NULL. */
char *s3xml_child_text(xmlNodePtr parent, const char *name);
/* Iterates child elements named NAME: for (n = s3xml_first(p, N); n; n = s3xml_next(n, N)). */
xmlNodePtr s3xml_first(xmlNodePtr parent, const char *name);
xmlNodePtr s3xml_next(xmlNodePtr node, const char *name);
#endif
