/* Reading S3's XML responses (errors, ListBuckets, ListObjectsV2) with libxml2. */
#include "s3xml.h"
#include "nexus.h"

#include <string.h>

xmlDocPtr s3xml_parse(const char *body, size_t len)
{
    if (!body || len == 0 || len > (size_t)1 << 30)
        return NULL;
    return xmlReadMemory(body, (int)len, "s3.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

xmlNodePtr s3xml_next(xmlNodePtr node, const char *name)
{
    for (xmlNodePtr n = node ? node->next : NULL; n; n = n->next)
        if (named(n, name))
            return n;
    return NULL;
}

xmlNodePtr s3xml_first(xmlNodePtr parent, const char *name)
{
    if (!parent)
        return NULL;
    for (xmlNodePtr n = parent->children; n; n = n->next)
        if (named(n, name))
            return n;
    return NULL;
}

char *s3xml_child_text(xmlNodePtr parent, const char *name)
{
    xmlNodePtr n = s3xml_first(parent, name);
    if (!n)
        return NULL;
    xmlChar *t = xmlNodeGetContent(n);
    char *s = xstrdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}
