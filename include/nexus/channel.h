/* SPDX-License-Identifier: MIT */
/*
 * The Nexus channel ABI — the single source of truth for the shared-memory
 * region between nexusd (the host backend) and one sandboxed function instance
 * (the guest).  Included by nexusd, nexus-vmm, the guest driver, libnexus and
 * (by way of docs/channel.md) the Python runtime.  Every layout is pinned by a
 * _Static_assert at the bottom.
 *
 * Region layout (one memfd per instance, created by nexusd, little-endian):
 *
 *   0                      struct nx_region_hdr   (NX_HDR_SIZE, written by host)
 *   NX_HDR_SIZE            to-host  ring  (guest produces, host consumes)
 *   + ring bytes           to-guest ring  (host produces, guest consumes)
 *   guest_arena_off        guest arena: the guest allocates here (request args,
 *                          PUT bodies, invocation results); the host only reads
 *   host_arena_off         host arena: nexusd allocates here (invocation events,
 *                          GET bodies, result metadata); the guest only reads
 *
 * Trust: the guest is hostile.  nexusd never reads the header back, keeps its
 * own copy of the layout, reads a ring index once per batch, copies every
 * descriptor out of shared memory once and validates opcode, offsets, lengths
 * and buffer ownership against its own records before acting (no double fetch).
 *
 * Protocol:
 *  - Every descriptor the guest posts on the to-host ring, except NX_OP_RELEASE,
 *    gets exactly one completion on the to-guest ring with the same opcode, the
 *    NX_F_COMPLETION flag and the same tag.  The guest may free the guest-arena
 *    buffers it named in a request once that completion arrives.
 *  - Host-arena buffers that a completion or an invocation hands to the guest
 *    belong to the guest until it returns them with NX_OP_RELEASE.
 *  - Notifications: each ring has a `consumer_sleeping` word.  A consumer that
 *    found its ring empty spins briefly, then stores 1 there, issues a full
 *    barrier, re-checks the ring, and only then sleeps on its doorbell.  A
 *    producer publishes `head` (release), issues a full barrier, and rings the
 *    doorbell only when `consumer_sleeping` is 1 (and clears it).  Idle costs
 *    no CPU; a busy consumer costs the producer no syscalls or VM exits.
 *  - No doorbell (and `consumer_sleeping` left set) for what nobody waits
 *    for: NX_OP_RELEASE (the host takes it, in ring order, before the guest's
 *    next request) and the NX_S_OK completion of NX_OP_INVOKE_DONE (the next
 *    NX_OP_INVOKE's doorbell delivers it; the guest frees the result buffer
 *    when it sees it).  A waiting guest simply gets them with the next one.
 *  - Doorbells are eventfds: guest->host is an eventfd (KVM ioeventfd in a VM),
 *    host->guest is an eventfd (KVM irqfd in a VM).  The transport-specific part
 *    lives in one place on each side.
 */
#ifndef NEXUS_CHANNEL_H
#define NEXUS_CHANNEL_H

#include <stdint.h>
#include <stddef.h>

#define NX_MAGIC            0x4752584eu /* "NXRG" */
#define NX_ABI_MAJOR        1
#define NX_ABI_MINOR        0

#define NX_HDR_SIZE         4096u
#define NX_CACHELINE        64u
#define NX_RING_ENTRIES     256u       /* power of two */
#define NX_ALIGN            64u        /* arena allocation granularity */

#define NX_REGION_MIN       (4u << 20)
#define NX_REGION_DEFAULT   (64u << 20)
#define NX_REGION_MAX       (1024u << 20)

/* Hard limits the host enforces on guest input. */
#define NX_ARGS_MAX         8192u            /* TLV request-argument buffer */
#define NX_FIELD_MAX        4096u            /* one TLV value */
#define NX_PAYLOAD_MAX      (6u * 1024 * 1024)  /* invocation event / result */

/* ---------------------------------------------------------------- header */

struct nx_region_hdr {
	uint32_t magic;            /* NX_MAGIC */
	uint16_t abi_major;        /* NX_ABI_MAJOR */
	uint16_t abi_minor;        /* NX_ABI_MINOR */
	uint64_t region_size;      /* bytes, multiple of 4096 */
	uint64_t generation;       /* bumped when an instance gets a fresh region
	                              (e.g. after snapshot restore): re-attach */
	uint32_t ring_entries;     /* NX_RING_ENTRIES */
	uint32_t flags;            /* reserved, 0 */
	uint64_t to_host_ring_off;
	uint64_t to_guest_ring_off;
	uint64_t guest_arena_off;
	uint64_t guest_arena_size;
	uint64_t host_arena_off;
	uint64_t host_arena_size;
	uint8_t  reserved[NX_HDR_SIZE - 80];
};

/* ---------------------------------------------------------------- buffers */

/* A byte range in the region: offset from region start, length. */
struct nx_buf {
	uint64_t off;
	uint64_t len;
};

/* ------------------------------------------------------------ descriptors */

struct nx_desc {
	uint16_t opcode;           /* enum nx_opcode */
	uint16_t flags;            /* NX_F_* */
	uint32_t status;           /* enum nx_status, completions only */
	uint64_t tag;              /* chosen by the requester, echoed back */
	struct nx_buf buf[3];      /* meaning per opcode, see enum nx_opcode */
};

#define NX_F_COMPLETION     0x0001u  /* this descriptor completes a request */

/*
 * Opcodes.  "G->H" are requests the guest posts on the to-host ring; "H->G"
 * are posted by the host on the to-guest ring.
 *   args  = TLV buffer in the guest arena (see below), <= NX_ARGS_MAX
 *   body  = bytes in the guest arena (request) or host arena (completion)
 *   meta  = JSON object in the host arena (completion): result fields on
 *           success, {"Code": "...", "Message": "..."} on error
 */
enum nx_opcode {
	NX_OP_NOP          = 0,  /* G->H  null round trip; completion has no bufs */
	NX_OP_READY        = 1,  /* G->H  runtime attached; buf0 = args (RUNTIME);
	                            completion: buf0 = meta (function config JSON) */
	NX_OP_INVOKE       = 2,  /* H->G  buf0 = event JSON, buf1 = context JSON,
	                            tag = invocation id; both buffers are released
	                            by the guest with NX_OP_RELEASE */
	NX_OP_INVOKE_DONE  = 3,  /* G->H  tag = invocation id; status = NX_S_OK or
	                            NX_S_HANDLER_ERROR; buf1 = result/error JSON;
	                            completion acknowledges (guest frees buf1),
	                            without a doorbell when NX_S_OK */
	NX_OP_RELEASE      = 4,  /* G->H  buf0 = a host-arena buffer the host handed
	                            over; no completion, no doorbell */
	NX_OP_S3_GET       = 16, /* G->H  buf0 = args (BUCKET KEY [RANGE] [IF_MATCH]);
	                            completion: buf0 = meta, buf1 = body */
	NX_OP_S3_PUT       = 17, /* G->H  buf0 = args (BUCKET KEY [CONTENT_TYPE]),
	                            buf1 = body; completion: buf0 = meta (ETag) */
	NX_OP_S3_HEAD      = 18, /* G->H  buf0 = args (BUCKET KEY); completion meta */
	NX_OP_S3_DELETE    = 19, /* G->H  buf0 = args (BUCKET KEY) */
	NX_OP_S3_LIST      = 20, /* G->H  buf0 = args (BUCKET [PREFIX] [DELIMITER]
	                            [CONT_TOKEN] [START_AFTER] [MAX_KEYS]); meta */
	NX_OP_S3_COPY      = 21, /* G->H  buf0 = args (SRC_BUCKET SRC_KEY BUCKET KEY) */
	NX_OP__MAX
};

enum nx_status {
	NX_S_OK             = 0,
	NX_S_HANDLER_ERROR  = 1,  /* INVOKE_DONE: the handler raised */
	NX_S_STORAGE_ERROR  = 2,  /* storage answered with an error; meta has Code */
	NX_S_ACCESS_DENIED  = 3,  /* bucket not in the function's allow-list */
	NX_S_INVALID        = 4,  /* malformed descriptor or arguments */
	NX_S_NO_SPACE       = 5,  /* host arena full: release buffers */
	NX_S_UNSUPPORTED    = 6,  /* unknown opcode */
	NX_S_IO_ERROR       = 7,  /* storage unreachable after retries */
	NX_S_TOO_LARGE      = 8,  /* object or payload over a limit */
};

/* ------------------------------------------------------------------- TLV */

/*
 * Request arguments: a sequence of fields, each
 *     uint16_t tag; uint16_t len; uint8_t value[len];
 * packed with no padding, little-endian.  Values are bytes (UTF-8 for names);
 * numbers are decimal ASCII.  A tag appears at most once; unknown tags are
 * rejected.  Total length <= NX_ARGS_MAX, each value <= NX_FIELD_MAX.
 */
enum nx_arg_tag {
	NX_ARG_BUCKET       = 1,
	NX_ARG_KEY          = 2,
	NX_ARG_RANGE        = 3,  /* "bytes=A-B" as in HTTP */
	NX_ARG_PREFIX       = 4,
	NX_ARG_CONT_TOKEN   = 5,
	NX_ARG_MAX_KEYS     = 6,
	NX_ARG_DELIMITER    = 7,
	NX_ARG_SRC_BUCKET   = 8,
	NX_ARG_SRC_KEY      = 9,
	NX_ARG_CONTENT_TYPE = 10,
	NX_ARG_START_AFTER  = 11,
	NX_ARG_IF_MATCH     = 12,
	NX_ARG_RUNTIME      = 13,
	NX_ARG__MAX
};

struct nx_tlv_hdr {
	uint16_t tag;
	uint16_t len;
};

/* ------------------------------------------------------------------ rings */

/*
 * A single-producer single-consumer ring.  Indices are free-running uint32
 * counters; slot = index & (entries - 1).  The producer owns `head`, the
 * consumer owns `tail`; each lives on its own cache line so the two sides
 * never false-share.  A consumer must treat (head - tail) > entries as a
 * protocol violation.
 */
struct nx_ring {
	uint32_t head;                     /* written by producer only */
	uint8_t  pad0[NX_CACHELINE - 4];
	uint32_t tail;                     /* written by consumer only */
	uint8_t  pad1[NX_CACHELINE - 4];
	uint32_t consumer_sleeping;        /* set by consumer before it sleeps */
	uint8_t  pad2[NX_CACHELINE - 4];
	struct nx_desc desc[NX_RING_ENTRIES];
};

#define NX_RING_BYTES       (sizeof(struct nx_ring))

/* Fixed part of the layout, before the arenas. */
#define NX_TO_HOST_RING_OFF   ((uint64_t)NX_HDR_SIZE)
#define NX_TO_GUEST_RING_OFF  (NX_TO_HOST_RING_OFF + NX_RING_BYTES)
#define NX_ARENAS_OFF         (((NX_TO_GUEST_RING_OFF + NX_RING_BYTES) + 4095u) & ~(uint64_t)4095u)

/* ---------------------------------------------------- environment (process
 * driver): how a sandboxed runtime finds its channel.  In a microVM the same
 * facts come from the Nexus device instead. */
#define NX_ENV_REGION_FD    "NEXUS_REGION_FD"     /* memfd of the region */
#define NX_ENV_KICK_HOST_FD "NEXUS_KICK_HOST_FD"  /* eventfd: guest -> host */
#define NX_ENV_KICK_GUEST_FD "NEXUS_KICK_GUEST_FD"/* eventfd: host -> guest */

/* ---------------------------------------------------------------- layout */

_Static_assert(sizeof(struct nx_region_hdr) == NX_HDR_SIZE, "header is one page");
_Static_assert(offsetof(struct nx_region_hdr, generation) == 16, "generation offset");
_Static_assert(offsetof(struct nx_region_hdr, host_arena_size) == 72, "header tail");
_Static_assert(sizeof(struct nx_buf) == 16, "nx_buf");
_Static_assert(sizeof(struct nx_desc) == 64, "descriptor is one cache line");
_Static_assert(offsetof(struct nx_desc, tag) == 8, "desc.tag");
_Static_assert(offsetof(struct nx_desc, buf) == 16, "desc.buf");
_Static_assert(sizeof(struct nx_tlv_hdr) == 4, "tlv header");
_Static_assert(offsetof(struct nx_ring, tail) == NX_CACHELINE, "tail on its own line");
_Static_assert(offsetof(struct nx_ring, consumer_sleeping) == 2 * NX_CACHELINE, "sleep flag line");
_Static_assert(offsetof(struct nx_ring, desc) == 3 * NX_CACHELINE, "descriptors");
_Static_assert((NX_RING_ENTRIES & (NX_RING_ENTRIES - 1)) == 0, "ring size power of two");
_Static_assert(NX_RING_BYTES == 3 * 64 + 64 * NX_RING_ENTRIES, "ring bytes");
_Static_assert(NX_ARENAS_OFF == 40960, "arenas start after header and two rings");

#endif /* NEXUS_CHANNEL_H */
