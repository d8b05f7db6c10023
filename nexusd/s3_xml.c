/* SPDX-License-Identifier: MIT */
/*
 * S3's XML responses, parsed with libxml2 (s3_internal.h).  Element names
 * are matched by local name, so the S3 namespace (or its absence) does not
 * matter.  Network access and external entities are disabled.
 */
#include "s3_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

static xmlDocPtr parse(const char *buf, size_t len)
{
	if (!buf || len == 0 || len > INT_MAX)
		return NULL;
	return xmlReadMemory(buf, (int)len, "s3.xml", NULL,
	                     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNode *root_named(xmlDocPtr doc, const char *name)
{
	xmlNode *r = doc ? xmlDocGetRootElement(doc) : NULL;
	return r && is(r, name) ? r : NULL;
}

/* Text of a node as a malloc'd string ("" when empty). */
static char *text(const xmlNode *n)
{
	xmlChar *t = xmlNodeGetContent(n);
	char *s = strdup(t ? (const char *)t : "");
	xmlFree(t);
	return s;
}

static void copy_text(const xmlNode *n, char *dst, size_t cap)
{
	char *t = text(n);
	snprintf(dst, cap, "%s", t ? t : "");
	free(t);
}

static void set_str(json_t *o, const char *k, const xmlNode *n)
{
	char *t = text(n);
	if (t)
		json_object_set_new(o, k, json_string(t));
	free(t);
}

static void set_int(json_t *o, const char *k, const xmlNode *n)
{
	char *t = text(n);
	if (t)
		json_object_set_new(o, k, json_integer(strtoll(t, NULL, 10)));
	free(t);
}

int nx_s3_xml_error(const char *buf, size_t len, char *code, size_t ccap, char *msg, size_t mcap)
{
	xmlDocPtr doc = parse(buf, len);
	xmlNode *r = root_named(doc, "Error");
	int ret = -1;
	if (r) {
		ret = 0;
		for (xmlNode *c = r->children; c; c = c->next) {
			if (is(c, "Code"))
				copy_text(c, code, ccap);
			else if (is(c, "Message"))
				copy_text(c, msg, mcap);
		}
	}
	xmlFreeDoc(doc);
	return ret;
}

static json_t *list_entry(const xmlNode *e)
{
	json_t *o = json_object();
	for (const xmlNode *c = e->children; c; c = c->next) {
		if (is(c, "Key"))
			set_str(o, "Key", c);
		else if (is(c, "Size"))
			set_int(o, "Size", c);
		else if (is(c, "ETag"))
			set_str(o, "ETag", c);
		else if (is(c, "LastModified"))
			set_str(o, "LastModified", c);
		else if (is(c, "StorageClass"))
			set_str(o, "StorageClass", c);
	}
	return o;
}

json_t *nx_s3_xml_list(const char *buf, size_t len)
{
	xmlDocPtr doc = parse(buf, len);
	xmlNode *r = root_named(doc, "ListBucketResult");
	if (!r) {
		xmlFreeDoc(doc);
		return NULL;
	}
	json_t *out = json_object(), *contents = json_array(), *prefixes = json_array();
	json_object_set_new(out, "IsTruncated", json_false());
	for (xmlNode *c = r->children; c; c = c->next) {
		if (is(c, "Contents")) {
			json_array_append_new(contents, list_entry(c));
		} else if (is(c, "CommonPrefixes")) {
			for (xmlNode *p = c->children; p; p = p->next)
				if (is(p, "Prefix")) {
					json_t *o = json_object();
					set_str(o, "Prefix", p);
					json_array_append_new(prefixes, o);
				}
		} else if (is(c, "IsTruncated")) {
			char *t = text(c);
			json_object_set_new(out, "IsTruncated", json_boolean(t && strcmp(t, "true") == 0));
			free(t);
		} else if (is(c, "KeyCount") || is(c, "MaxKeys")) {
			set_int(out, (const char *)c->name, c);
		} else if (is(c, "NextContinuationToken") || is(c, "ContinuationToken") || is(c, "Name") ||
		           is(c, "Prefix") || is(c, "Delimiter") || is(c, "StartAfter")) {
			set_str(out, (const char *)c->name, c);
		}
	}
	if (!json_object_get(out, "KeyCount"))
		json_object_set_new(out, "KeyCount",
		                    json_integer((json_int_t)(json_array_size(contents) + json_array_size(prefixes))));
	json_object_set_new(out, "Contents", contents);
	json_object_set_new(out, "CommonPrefixes", prefixes);
	xmlFreeDoc(doc);
	return out;
}

int nx_s3_xml_copy(const char *buf, size_t len, char *etag, size_t ecap, char *lm, size_t lcap)
{
	xmlDocPtr doc = parse(buf, len);
	int ret = -1;
	xmlNode *r = doc ? xmlDocGetRootElement(doc) : NULL;
	if (r && is(r, "CopyObjectResult")) {
		ret = 0;
		for (xmlNode *c = r->children; c; c = c->next) {
			if (is(c, "ETag"))
				copy_text(c, etag, ecap);
			else if (is(c, "LastModified"))
				copy_text(c, lm, lcap);
		}
	} else if (r && is(r, "Error")) {
		ret = 1;
	}
	xmlFreeDoc(doc);
	return ret;
}
