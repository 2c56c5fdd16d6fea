/*
 * openpgm_peer: a small OpenPGM 5.3 (Debian libpgm-dev) interop peer for the netns tests.
 *
 *   openpgm_peer send|recv --network "10.0.0.1;239.192.1.1" --port 7500 [--udp]
 *                [--count N] [--size BYTES] [--rate BYTES_PER_SEC] [--linger SECS]
 *                [--timeout SECS] [--txw-sqns N] [--rxw-sqns N] [--nak-ivls BO,RPT,RDATA]
 *                [--nak-retries N] [--spmr-ms MS] [--peer-expiry-s S] [--ambient-s S]
 *                [--hops N] [--loop] [--start-delay-ms MS] [--interval-us US] [--msg-rate N]
 *                [--big-every K --big-size BYTES] [--mtu BYTES] [--fec-ondemand K] [--pgmcc]
 *                [--quiet]
 *
 *   openpgm_peer ping    --network "IF;GROUP1" --port P --network2 "IF;GROUP2" [--port2 P2]
 *                        [--count N] [--warmup N] [--size BYTES] [--spin] [--ping-timeout SECS]
 *                        [--max-secs SECS] [--interval-us US] [--udp] (+ the timing options above)
 *   openpgm_peer reflect --network "IF;GROUP1" --port P --network2 "IF;GROUP2" [--port2 P2]
 *                        [--spin] [--timeout SECS] [--max-secs SECS] [--udp] ...
 *
 * ping/reflect mirror our pgm-ping (tools/src/ping.rs): round trips through a reflector over
 * two PGM sessions, one each way. The pinger sends on --network/--port and receives the answers
 * on --network2/--port2 (default --port + 1); the reflector receives on --network/--port and
 * sends every message straight back on --network2/--port2. Each process opens a RECV_ONLY socket
 * (first) and a SEND_ONLY socket. Ping i: bytes 0..8 = i (u64 BE), 8..16 = its CLOCK_MONOTONIC
 * send time, the rest zero; a stop message (bytes 0..8 all ones, sent 3 times at the end) ends
 * the reflector, which also stops after --timeout s without a message (once it got one) or
 * --max-secs in all. The first --warmup round trips (or those of the first 2 s, if fewer) are
 * not recorded; until the first answer pings are retried; a ping without an answer within
 * --ping-timeout counts as lost. Blocking mode waits in ppoll() on both sockets' descriptors
 * (pgm_poll_info) with OpenPGM's timer (PGM_TIME_REMAIN) as the timeout, like OpenPGM's
 * examples; --spin calls pgm_recvfrom(MSG_DONTWAIT) in a loop without sleeping. OpenPGM has no
 * thread of its own, so the send socket is serviced (NAKs, SPMRs, its timers; with raw PGM also
 * the copies of every other PGM packet its raw socket gets) from the same loop. The pinger
 * prints ONE JSON line with pgm-ping's keys: exact percentiles of the sorted samples, in µs.
 * The reflector prints {"reflected","ignored","max_rss_kb"}.
 *
 * Test message (shared with the Rust tools): bytes 0..8 = sequence number (u64 BE, from 0),
 * bytes 8..12 = CRC-32 (IEEE, as zlib crc32) of bytes 12..end (BE), then filler. Minimum 12 bytes.
 *
 * With --big-every K, every message whose seq % K == K-1 has --big-size bytes instead of --size
 * (give the receiver the same flags: it checks every message's length).
 *
 * Both roles print "READY" on stderr once the socket is connected, and ONE JSON line on stdout
 * at the end. The receiver exits non-zero on gaps, corruption, unrecoverable loss or fewer than
 * --count messages; the sender exits non-zero when it could not send --count messages.
 *
 * --pgmcc turns on OpenPGM's PGMCC (PGM_USE_PGMCC {50 ms, 75, 500}, as its examples) on a
 * sender or a receiver; a PGMCC sender waits for ACKs (PGM_IO_STATUS_CONGESTION).
 *
 * Traps of Debian's 5.3.128 avoided here (see docs/wire-compatibility.md §14):
 *  - pgm_send() only from buffers congruent mod 16 to the payload's place in OpenPGM's skb
 *    (SIMD checksum-copy with aligned stores): 16-byte aligned, or 4 mod 16 with PGMCC on IPv4,
 *    whose option makes the header 44 bytes;
 *  - APDUs larger than one TPDU only via pgm_send_skbv() with skbs we build ourselves;
 *  - OpenPGM has no thread: the sender keeps calling pgm_recvfrom() so SPMs, NCFs and RDATA go out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <pgm/pgm.h>

/* Exported by libpgm but not declared in the public headers. */
size_t pgm_pkt_offset(bool can_fragment, sa_family_t pgmcc_family);

#define MAX_FRAGMENTS 16
/* ping/reflect: smallest message (sequence number and timestamp); bytes 0..8 of the stop message. */
#define MIN_PING_SIZE 16
#define STOP_WORD UINT64_MAX
#define RECV_BUF_SIZE 65536

enum role { ROLE_SEND, ROLE_RECV, ROLE_PING, ROLE_REFLECT };

struct options {
	enum role role;
	bool send; /* role == ROLE_SEND */
	const char *network2;
	int port2;
	uint64_t warmup;
	bool spin;
	double ping_timeout;
	double max_secs;
	const char *network;
	int port;
	bool udp;
	uint64_t count;
	size_t size;
	long rate;
	double linger;
	double timeout;
	int txw_sqns;
	int rxw_sqns;
	int nak_bo_ms, nak_rpt_ms, nak_rdata_ms;
	int nak_retries;
	int spmr_ms;
	int peer_expiry_s;
	int ambient_s;
	int hops;
	bool loop;
	int start_delay_ms;
	long interval_us;
	/* Sender: ODATA on a fixed schedule of this many messages/s (0: as fast as the rate
	 * limit lets), so the token bucket keeps room for RDATA. */
	long msg_rate;
	uint64_t big_every;
	size_t big_size;
	int mtu;
	/* Sender: on-demand parity for groups of this size (0: no FEC). */
	int fec_ondemand;
	bool pgmcc;
	bool quiet;
};

/* With --pgmcc: the family of the PGMCC option's NLA (the header room it takes), else 0. */
static sa_family_t g_pgmcc_family = 0;

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- CRC-32 (IEEE 802.3, reflected 0xEDB88320), identical to zlib's crc32() ---- */
static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Size of message `seq`. */
static size_t message_size(const struct options *o, uint64_t seq)
{
	if (o->big_every > 0 && seq % o->big_every == o->big_every - 1)
		return o->big_size;
	return o->size;
}

static size_t max_message_size(const struct options *o)
{
	return (o->big_every > 0 && o->big_size > o->size) ? o->big_size : o->size;
}

/* Fill a test message of `size` bytes for `seq`. */
static void build_message(uint8_t *buf, size_t size, uint64_t seq)
{
	put_be64(buf, seq);
	for (size_t i = 12; i < size; i++)
		buf[i] = (uint8_t)(seq * 31u + i * 7u);
	put_be32(buf + 8, crc32_ieee(buf + 12, size - 12));
}

/* ---- CLI ---- */
static void usage(void)
{
	fprintf(stderr,
		"usage: openpgm_peer send|recv|ping|reflect --network \"IFADDR;GROUP\" --port PORT [--udp]\n"
		"       [--count N] [--size BYTES] [--rate BYTES_PER_SEC] [--linger SECS] [--timeout SECS]\n"
		"       [--txw-sqns N] [--rxw-sqns N] [--nak-ivls BO,RPT,RDATA (ms)] [--nak-retries N]\n"
		"       [--spmr-ms MS] [--peer-expiry-s S] [--ambient-s S] [--hops N] [--loop]\n"
		"       [--start-delay-ms MS] [--interval-us US] [--msg-rate N] [--big-every K --big-size BYTES]\n"
		"       [--mtu BYTES] [--fec-ondemand K] [--pgmcc] [--quiet]\n"
		"  ping|reflect: --network2 \"IFADDR;GROUP2\" [--port2 PORT2] [--warmup N] [--spin]\n"
		"       [--ping-timeout SECS] [--max-secs SECS]\n");
	exit(2);
}

static long parse_long(const char *s, const char *what)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < 0) {
		fprintf(stderr, "openpgm_peer: bad value for %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static double parse_double(const char *s, const char *what)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || v < 0) {
		fprintf(stderr, "openpgm_peer: bad value for %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof *o);
	o->port = 7500;
	o->count = 1000;
	o->size = 200;
	o->linger = 2.0;
	o->timeout = 10.0;
	o->txw_sqns = 10000;
	o->rxw_sqns = -1;
	o->nak_bo_ms = 50;
	o->nak_rpt_ms = 200;
	o->nak_rdata_ms = 200;
	o->nak_retries = 50;
	o->spmr_ms = 250;
	o->peer_expiry_s = 300;
	o->ambient_s = 30;
	o->hops = 16;
	o->mtu = 1500;
	o->port2 = -1;
	o->warmup = 200;
	o->ping_timeout = 1.0;
	o->max_secs = 120.0;
	bool size_set = false, timeout_set = false;
	if (argc < 2)
		usage();
	if (0 == strcmp(argv[1], "send"))
		o->role = ROLE_SEND;
	else if (0 == strcmp(argv[1], "recv"))
		o->role = ROLE_RECV;
	else if (0 == strcmp(argv[1], "ping"))
		o->role = ROLE_PING;
	else if (0 == strcmp(argv[1], "reflect"))
		o->role = ROLE_REFLECT;
	else
		usage();
	o->send = o->role == ROLE_SEND;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                   \
	do {                                                                           \
		if (!v) {                                                              \
			fprintf(stderr, "openpgm_peer: %s needs a value\n", a);        \
			exit(2);                                                       \
		}                                                                      \
		i++;                                                                   \
	} while (0)
		if (0 == strcmp(a, "--network")) { NEED_VALUE(); o->network = v; }
		else if (0 == strcmp(a, "--port")) { NEED_VALUE(); o->port = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--udp")) { o->udp = true; }
		else if (0 == strcmp(a, "--count")) { NEED_VALUE(); o->count = (uint64_t)parse_long(v, a); }
		else if (0 == strcmp(a, "--size")) { NEED_VALUE(); o->size = (size_t)parse_long(v, a); size_set = true; }
		else if (0 == strcmp(a, "--rate")) { NEED_VALUE(); o->rate = parse_long(v, a); }
		else if (0 == strcmp(a, "--linger")) { NEED_VALUE(); o->linger = parse_double(v, a); }
		else if (0 == strcmp(a, "--timeout")) { NEED_VALUE(); o->timeout = parse_double(v, a); timeout_set = true; }
		else if (0 == strcmp(a, "--txw-sqns")) { NEED_VALUE(); o->txw_sqns = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--rxw-sqns")) { NEED_VALUE(); o->rxw_sqns = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--nak-ivls")) {
			NEED_VALUE();
			if (3 != sscanf(v, "%d,%d,%d", &o->nak_bo_ms, &o->nak_rpt_ms, &o->nak_rdata_ms) ||
			    o->nak_bo_ms <= 0 || o->nak_rpt_ms <= 0 || o->nak_rdata_ms <= 0) {
				fprintf(stderr, "openpgm_peer: --nak-ivls wants BO,RPT,RDATA in ms\n");
				exit(2);
			}
		}
		else if (0 == strcmp(a, "--nak-retries")) { NEED_VALUE(); o->nak_retries = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--spmr-ms")) { NEED_VALUE(); o->spmr_ms = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--peer-expiry-s")) { NEED_VALUE(); o->peer_expiry_s = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--ambient-s")) { NEED_VALUE(); o->ambient_s = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--hops")) { NEED_VALUE(); o->hops = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--loop")) { o->loop = true; }
		else if (0 == strcmp(a, "--start-delay-ms")) { NEED_VALUE(); o->start_delay_ms = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--interval-us")) { NEED_VALUE(); o->interval_us = parse_long(v, a); }
		else if (0 == strcmp(a, "--msg-rate")) { NEED_VALUE(); o->msg_rate = parse_long(v, a); }
		else if (0 == strcmp(a, "--big-every")) { NEED_VALUE(); o->big_every = (uint64_t)parse_long(v, a); }
		else if (0 == strcmp(a, "--big-size")) { NEED_VALUE(); o->big_size = (size_t)parse_long(v, a); }
		else if (0 == strcmp(a, "--mtu")) { NEED_VALUE(); o->mtu = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--fec-ondemand")) { NEED_VALUE(); o->fec_ondemand = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--pgmcc")) { o->pgmcc = true; }
		else if (0 == strcmp(a, "--quiet")) { o->quiet = true; }
		else if (0 == strcmp(a, "--network2")) { NEED_VALUE(); o->network2 = v; }
		else if (0 == strcmp(a, "--port2")) { NEED_VALUE(); o->port2 = (int)parse_long(v, a); }
		else if (0 == strcmp(a, "--warmup")) { NEED_VALUE(); o->warmup = (uint64_t)parse_long(v, a); }
		else if (0 == strcmp(a, "--spin")) { o->spin = true; }
		else if (0 == strcmp(a, "--ping-timeout")) { NEED_VALUE(); o->ping_timeout = parse_double(v, a); }
		else if (0 == strcmp(a, "--max-secs")) { NEED_VALUE(); o->max_secs = parse_double(v, a); }
		else {
			fprintf(stderr, "openpgm_peer: unknown argument %s\n", a);
			usage();
		}
#undef NEED_VALUE
	}
	if (!o->network) {
		fprintf(stderr, "openpgm_peer: --network is required\n");
		exit(2);
	}
	if (o->role == ROLE_PING || o->role == ROLE_REFLECT) {
		if (!size_set)
			o->size = 64;
		if (!timeout_set && o->role == ROLE_REFLECT)
			o->timeout = 5.0;
		if (o->port2 < 0)
			o->port2 = o->port + 1;
		if (!o->network2) {
			fprintf(stderr, "openpgm_peer: ping and reflect need --network2\n");
			exit(2);
		}
		if (o->size < MIN_PING_SIZE || o->port2 < 1 || o->port2 > 65535 || o->count > 100000000 ||
		    o->warmup > 100000000) {
			fprintf(stderr, "openpgm_peer: --size must be at least %d, --port2 1..65535, "
					"--count and --warmup at most 1e8\n", MIN_PING_SIZE);
			exit(2);
		}
		const double secs[] = {o->ping_timeout, o->timeout, o->max_secs};
		for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
			if (!(secs[i] >= 0.001 && secs[i] <= 86400.0)) {
				fprintf(stderr, "openpgm_peer: --ping-timeout, --timeout and --max-secs must be "
						"0.001..86400 s\n");
				exit(2);
			}
		}
	}
	if (o->size < 12 || (o->big_every > 0 && o->big_size < 12)) {
		fprintf(stderr, "openpgm_peer: --size and --big-size must be at least 12\n");
		exit(2);
	}
	if (o->rxw_sqns < 0)
		o->rxw_sqns = o->txw_sqns;
	if (o->hops < 1 || o->hops > 255 || o->port < 1 || o->port > 65535) {
		fprintf(stderr, "openpgm_peer: --hops must be 1..255 and --port 1..65535\n");
		exit(2);
	}
}

/* ---- socket setup ---- */
static bool set_int(pgm_sock_t *s, int level, int opt, int v, const char *name)
{
	if (!pgm_setsockopt(s, level, opt, &v, sizeof v)) {
		fprintf(stderr, "openpgm_peer: setting %s=%d failed\n", name, v);
		return false;
	}
	return true;
}

#define SET(opt, v)                                                                           \
	do {                                                                                  \
		if (!set_int(sock, IPPROTO_PGM, opt, (int)(v), #opt))                         \
			goto fail;                                                            \
	} while (0)

/* One OpenPGM socket on `network` ("IFADDR;GROUP") and `port`: SEND_ONLY if `send`, else RECV_ONLY. */
static pgm_sock_t *open_socket(const struct options *o, const char *network, int port, bool send)
{
	pgm_error_t *err = NULL;
	struct pgm_addrinfo_t *res = NULL;
	pgm_sock_t *sock = NULL;

	if (!pgm_getaddrinfo(network, NULL, &res, &err)) {
		fprintf(stderr, "openpgm_peer: parsing network \"%s\": %s\n", network,
			err && err->message ? err->message : "?");
		pgm_error_free(err);
		return NULL;
	}
	const sa_family_t family = res->ai_send_addrs[0].gsr_group.ss_family;
	if (!pgm_socket(&sock, family, SOCK_SEQPACKET, o->udp ? IPPROTO_UDP : IPPROTO_PGM, &err)) {
		fprintf(stderr, "openpgm_peer: pgm_socket: %s\n", err && err->message ? err->message : "?");
		pgm_error_free(err);
		pgm_freeaddrinfo(res);
		return NULL;
	}
	/* Encapsulation ports BEFORE any group option: they are copied into send_gsr there. */
	if (o->udp) {
		SET(PGM_UDP_ENCAP_UCAST_PORT, port);
		SET(PGM_UDP_ENCAP_MCAST_PORT, port);
	}
	/* Off is the default for IPv6, where OpenPGM refuses to set it at all. */
	if (AF_INET == family)
		SET(PGM_IP_ROUTER_ALERT, 0);
	SET(PGM_MTU, o->mtu);
	if (o->pgmcc) {
		const struct pgm_pgmccinfo_t cc = {
			.ack_bo_ivl = pgm_msecs(50),
			.ack_c = 75,
			.ack_c_p = 500,
		};
		if (!pgm_setsockopt(sock, IPPROTO_PGM, PGM_USE_PGMCC, &cc, sizeof cc)) {
			fprintf(stderr, "openpgm_peer: setting PGM_USE_PGMCC failed\n");
			goto fail;
		}
		g_pgmcc_family = family;
	}
	{
		const int bufsize = 1024 * 1024;
		if (!set_int(sock, SOL_SOCKET, SO_RCVBUF, bufsize, "SO_RCVBUF") ||
		    !set_int(sock, SOL_SOCKET, SO_SNDBUF, bufsize, "SO_SNDBUF"))
			goto fail;
	}
	if (send) {
		static const int heartbeat_ms[] = {100, 100, 100, 100, 1300, 7000, 16000, 25000, 30000};
		int heartbeat[sizeof heartbeat_ms / sizeof heartbeat_ms[0]];
		for (size_t i = 0; i < sizeof heartbeat / sizeof heartbeat[0]; i++)
			heartbeat[i] = (int)pgm_msecs(heartbeat_ms[i]);
		SET(PGM_SEND_ONLY, 1);
		if (o->fec_ondemand > 0) {
			/* The brief, section 1.1: PGM_TXW_SQNS with FEC aborts at the first parity
			 * packet; the window is sized in seconds at the rate instead. On-demand only:
			 * its pro-active mode crashes (openpgm #70). */
			const struct pgm_fecinfo_t fec = {
				.block_size = 255,
				.proactive_packets = 0,
				.group_size = (uint8_t)o->fec_ondemand,
				.ondemand_parity_enabled = true,
				.var_pktlen_enabled = false,
			};
			if (o->rate <= 0) {
				fprintf(stderr, "openpgm_peer: --fec-ondemand needs --rate\n");
				goto fail;
			}
			const long rate_pkts = o->rate / (long)(o->size + 50);
			long secs = rate_pkts > 0 ? (o->txw_sqns + rate_pkts - 1) / rate_pkts : 1;
			SET(PGM_TXW_SECS, (int)(secs < 1 ? 1 : secs));
			SET(PGM_TXW_MAX_RTE, o->rate);
			if (!pgm_setsockopt(sock, IPPROTO_PGM, PGM_USE_FEC, &fec, sizeof fec)) {
				fprintf(stderr, "openpgm_peer: setting PGM_USE_FEC failed\n");
				goto fail;
			}
		} else {
			SET(PGM_TXW_SQNS, o->txw_sqns);
			if (o->rate > 0)
				SET(PGM_TXW_MAX_RTE, o->rate);
		}
		SET(PGM_AMBIENT_SPM, pgm_secs(o->ambient_s));
		if (!pgm_setsockopt(sock, IPPROTO_PGM, PGM_HEARTBEAT_SPM, heartbeat, sizeof heartbeat)) {
			fprintf(stderr, "openpgm_peer: setting PGM_HEARTBEAT_SPM failed\n");
			goto fail;
		}
	} else {
		SET(PGM_RECV_ONLY, 1);
		SET(PGM_PASSIVE, 0);
		SET(PGM_RXW_SQNS, o->rxw_sqns);
		SET(PGM_PEER_EXPIRY, pgm_secs(o->peer_expiry_s));
		SET(PGM_SPMR_EXPIRY, pgm_msecs(o->spmr_ms));
		SET(PGM_NAK_BO_IVL, pgm_msecs(o->nak_bo_ms));
		SET(PGM_NAK_RPT_IVL, pgm_msecs(o->nak_rpt_ms));
		SET(PGM_NAK_RDATA_IVL, pgm_msecs(o->nak_rdata_ms));
		SET(PGM_NAK_DATA_RETRIES, o->nak_retries);
		SET(PGM_NAK_NCF_RETRIES, o->nak_retries);
	}

	/* GSI from pid, time and randomness: every process must have its own TSI. */
	struct pgm_sockaddr_t addr;
	memset(&addr, 0, sizeof addr);
	addr.sa_port = (uint16_t)port;
	addr.sa_addr.sport = 0;
	{
		struct {
			pid_t pid;
			struct timespec ts;
			long rnd;
		} seed;
		memset(&seed, 0, sizeof seed);
		seed.pid = getpid();
		clock_gettime(CLOCK_REALTIME, &seed.ts);
		srandom((unsigned)(seed.ts.tv_nsec ^ seed.pid));
		seed.rnd = random();
		if (!pgm_gsi_create_from_data(&addr.sa_addr.gsi, (const uint8_t *)&seed, sizeof seed)) {
			fprintf(stderr, "openpgm_peer: creating GSI failed\n");
			goto fail;
		}
	}
	struct pgm_interface_req_t ifr;
	memset(&ifr, 0, sizeof ifr);
	ifr.ir_interface = res->ai_recv_addrs[0].gsr_interface;
	ifr.ir_scope_id = 0;
	memcpy(&ifr.ir_address, &res->ai_send_addrs[0].gsr_addr, sizeof ifr.ir_address);
	if (!pgm_bind3(sock, &addr, sizeof addr, &ifr, sizeof ifr, &ifr, sizeof ifr, &err)) {
		fprintf(stderr, "openpgm_peer: pgm_bind3: %s\n", err && err->message ? err->message : "?");
		pgm_error_free(err);
		err = NULL;
		goto fail;
	}
	for (unsigned i = 0; i < res->ai_recv_addrs_len; i++) {
		if (!pgm_setsockopt(sock, IPPROTO_PGM, PGM_JOIN_GROUP, &res->ai_recv_addrs[i],
				    sizeof(struct pgm_group_source_req))) {
			fprintf(stderr, "openpgm_peer: PGM_JOIN_GROUP failed\n");
			goto fail;
		}
	}
	if (!pgm_setsockopt(sock, IPPROTO_PGM, PGM_SEND_GROUP, &res->ai_send_addrs[0],
			    sizeof(struct pgm_group_source_req))) {
		fprintf(stderr, "openpgm_peer: PGM_SEND_GROUP failed\n");
		goto fail;
	}
	pgm_freeaddrinfo(res);
	res = NULL;

	SET(PGM_MULTICAST_LOOP, o->loop ? 1 : 0);
	SET(PGM_MULTICAST_HOPS, o->hops);
	if (AF_INET6 != family) {
		const int tos = 0xB8; /* DSCP EF, like libzmq and the OpenPGM examples */
		(void)pgm_setsockopt(sock, IPPROTO_PGM, PGM_TOS, &tos, sizeof tos);
	}
	SET(PGM_NOBLOCK, 1);

	if (!pgm_connect(sock, &err)) {
		fprintf(stderr, "openpgm_peer: pgm_connect: %s\n", err && err->message ? err->message : "?");
		pgm_error_free(err);
		err = NULL;
		goto fail;
	}
	return sock;

fail:
	if (res)
		pgm_freeaddrinfo(res);
	if (sock)
		pgm_close(sock, FALSE);
	return NULL;
}
#undef SET

/* Milliseconds until the next OpenPGM timer (rounded up, at least 1 when pending). */
static int timeval_opt_ms(pgm_sock_t *sock, int opt)
{
	struct timeval tv;
	socklen_t len = sizeof tv;
	if (!pgm_getsockopt(sock, IPPROTO_PGM, opt, &tv, &len))
		return 1;
	long ms = tv.tv_sec * 1000L + (tv.tv_usec + 999) / 1000;
	if (ms < 1)
		ms = 1;
	if (ms > 1000)
		ms = 1000;
	return (int)ms;
}

/* Wait on the socket's descriptors for at most timeout_ms. */
static void wait_socket(pgm_sock_t *sock, int timeout_ms, bool want_out)
{
	struct pollfd fds[8];
	int n = (int)(sizeof fds / sizeof fds[0]);
	memset(fds, 0, sizeof fds);
	if (pgm_poll_info(sock, fds, &n, POLLIN | (want_out ? POLLOUT : 0)) < 0)
		n = 0;
	if (timeout_ms < 0)
		timeout_ms = 0;
	(void)poll(fds, (nfds_t)n, timeout_ms);
}

/* ---- sender ---- */

/* Run OpenPGM's receive path (NAKs, SPMRs, timers: NCF, RDATA, SPM) without blocking.
 * Returns the suggested wait in ms before the next call. */
static int service_source(pgm_sock_t *sock, uint8_t *scratch)
{
	for (int i = 0; i < 256; i++) {
		size_t len = 0;
		pgm_error_t *err = NULL;
		const int st = pgm_recvfrom(sock, scratch, RECV_BUF_SIZE, 0, &len, NULL, NULL, &err);
		if (err)
			pgm_error_free(err);
		switch (st) {
		case PGM_IO_STATUS_TIMER_PENDING: {
			const int ms = timeval_opt_ms(sock, PGM_TIME_REMAIN);
			if (ms > 1)
				return ms;
			break; /* timer (almost) due: run it now */
		}
		case PGM_IO_STATUS_RATE_LIMITED:
			return timeval_opt_ms(sock, PGM_RATE_REMAIN);
		case PGM_IO_STATUS_WOULD_BLOCK:
			return 100;
		case PGM_IO_STATUS_NORMAL:
		case PGM_IO_STATUS_RESET:
		case PGM_IO_STATUS_FIN:
			break; /* a send-only socket should not see these; keep draining */
		default:
			return 10;
		}
	}
	return 0;
}

struct fragment_set {
	struct pgm_sk_buff_t *skb[MAX_FRAGMENTS];
	unsigned count;
};

/* Build the skbs of one fragmented APDU (ownership passes to the library on successful send). */
static bool build_fragments(struct fragment_set *fs, const uint8_t *msg, size_t size, size_t mss,
			    uint16_t max_tpdu)
{
	const size_t header = pgm_pkt_offset(TRUE, g_pgmcc_family);
	size_t off = 0;
	fs->count = 0;
	while (off < size) {
		if (fs->count == MAX_FRAGMENTS)
			return false;
		const size_t chunk = (size - off < mss) ? size - off : mss;
		struct pgm_sk_buff_t *skb = pgm_alloc_skb(max_tpdu);
		pgm_skb_reserve(skb, (uint16_t)header);
		pgm_skb_put(skb, (uint16_t)chunk);
		memcpy(skb->data, msg + off, chunk);
		fs->skb[fs->count++] = skb;
		off += chunk;
	}
	return true;
}

static int run_sender(const struct options *o, pgm_sock_t *sock)
{
	size_t msss = 0, mss = 0, pdu = 0;
	socklen_t len = sizeof msss;
	int tmp = 0;
	len = sizeof tmp;
	if (pgm_getsockopt(sock, IPPROTO_PGM, PGM_MSSS, &tmp, &len))
		msss = (size_t)tmp;
	len = sizeof tmp;
	if (pgm_getsockopt(sock, IPPROTO_PGM, PGM_MSS, &tmp, &len))
		mss = (size_t)tmp;
	len = sizeof tmp;
	if (pgm_getsockopt(sock, IPPROTO_PGM, PGM_PDU, &tmp, &len))
		pdu = (size_t)tmp;
	if (!o->quiet)
		fprintf(stderr, "openpgm_peer: MSSS=%zu MSS=%zu PDU=%zu\n", msss, mss, pdu);
	if (msss == 0 || mss == 0) {
		fprintf(stderr, "openpgm_peer: cannot read PGM_MSSS/PGM_MSS\n");
		return 1;
	}
	const size_t max_size = max_message_size(o);
	if (max_size > msss && (max_size > pdu || (max_size + mss - 1) / mss > MAX_FRAGMENTS)) {
		fprintf(stderr, "openpgm_peer: message size %zu exceeds the maximum APDU (%zu)\n", max_size, pdu);
		return 2;
	}
	if (max_size > msss && o->rate > 0 && o->rate / 1000 >= o->mtu &&
	    (long)(max_size + (max_size / mss + 1) * 100) > o->rate / 1000) {
		/* OpenPGM's non-blocking rate check wants the whole APDU in the token bucket, which
		 * holds only 1 ms worth when rate/1000 >= MTU: pgm_send_skbv would never succeed. */
		fprintf(stderr,
			"openpgm_peer: with --rate %ld an APDU of %zu bytes never fits OpenPGM's "
			"1 ms token bucket; use a rate below %d or above ~%zu B/s\n",
			o->rate, max_size, o->mtu * 1000, (max_size + 2048) * 1000);
		return 2;
	}

	/* The payload's place in the skb mod 16 (the SIMD copy trap above). */
	const size_t align = AF_INET == g_pgmcc_family ? 4 : 0;
	uint8_t *buf = aligned_alloc(64, (max_size + align + 63) / 64 * 64);
	uint8_t *msg = buf ? buf + align : NULL;
	uint8_t *scratch = aligned_alloc(64, RECV_BUF_SIZE);
	if (!msg || !scratch) {
		fprintf(stderr, "openpgm_peer: out of memory\n");
		return 1;
	}

	const double t_start = now_s();
	const double deadline = t_start + (o->timeout > 0 ? o->timeout : 1e9);
	fprintf(stderr, "READY\n");
	fflush(stderr);

	/* Optional pause before the first ODATA (e.g. to let a late receiver send an SPMR). */
	if (o->start_delay_ms > 0) {
		const double until = now_s() + o->start_delay_ms / 1000.0;
		while (!g_stop && now_s() < until) {
			int ms = service_source(sock, scratch);
			const int left = (int)((until - now_s()) * 1000.0) + 1;
			wait_socket(sock, ms < left ? ms : left, false);
		}
	}

	uint64_t sent = 0, bytes = 0;
	double t_first = 0, t_last = 0;
	bool failed = false;
	while (sent < o->count && !g_stop) {
		const size_t size = message_size(o, sent);
		const bool fragmented = size > msss;
		build_message(msg, size, sent);
		struct fragment_set fs;
		if (fragmented && !build_fragments(&fs, msg, size, mss, (uint16_t)o->mtu)) {
			fprintf(stderr, "openpgm_peer: too many fragments\n");
			failed = true;
			break;
		}
		for (;;) {
			size_t written = 0;
			const int st = fragmented ? pgm_send_skbv(sock, fs.skb, fs.count, TRUE, &written)
						  : pgm_send(sock, msg, size, &written);
			if (st == PGM_IO_STATUS_NORMAL)
				break;
			if (now_s() > deadline || g_stop) {
				fprintf(stderr, "openpgm_peer: send timed out at message %" PRIu64 "\n", sent);
				failed = true;
				break;
			}
			if (st == PGM_IO_STATUS_RATE_LIMITED) {
				const int rate_ms = timeval_opt_ms(sock, PGM_RATE_REMAIN);
				const int svc_ms = service_source(sock, scratch);
				wait_socket(sock, rate_ms < svc_ms ? rate_ms : svc_ms, false);
			} else if (st == PGM_IO_STATUS_WOULD_BLOCK || st == PGM_IO_STATUS_CONGESTION) {
				const int svc_ms = service_source(sock, scratch);
				wait_socket(sock, svc_ms < 5 ? svc_ms : 5, true);
			} else {
				fprintf(stderr, "openpgm_peer: send failed with status %d at message %" PRIu64 "\n",
					st, sent);
				failed = true;
				break;
			}
		}
		if (failed)
			break;
		if (sent == 0)
			t_first = now_s();
		t_last = now_s();
		sent++;
		bytes += size;
		(void)service_source(sock, scratch);
		if (o->interval_us > 0 && sent < o->count) {
			const double until = now_s() + o->interval_us / 1e6;
			while (!g_stop && now_s() < until) {
				const int ms = service_source(sock, scratch);
				const int left = (int)((until - now_s()) * 1000.0) + 1;
				wait_socket(sock, ms < left ? ms : left, false);
			}
		}
		/* Message `sent` is due at t_first + sent / msg_rate: a late one goes at once, so the
		 * average holds whatever the poll granularity (1 ms). */
		if (o->msg_rate > 0 && sent < o->count) {
			const double due = t_first + (double)sent / (double)o->msg_rate;
			while (!g_stop && now_s() < due) {
				const int ms = service_source(sock, scratch);
				const int left = (int)((due - now_s()) * 1000.0) + 1;
				wait_socket(sock, ms < left ? ms : left, false);
			}
		}
	}

	/* Keep answering NAKs (NCF + RDATA) and sending heartbeat SPMs for a while. */
	const double linger_until = now_s() + o->linger;
	while (!g_stop && now_s() < linger_until) {
		const int ms = service_source(sock, scratch);
		const int left = (int)((linger_until - now_s()) * 1000.0) + 1;
		wait_socket(sock, ms < left ? ms : left, false);
	}

	const double elapsed = (sent > 0) ? t_last - t_first : 0.0;
	printf("{\"sent\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"elapsed_s\":%.6f,\"msgs_per_s\":%.1f}\n", sent,
	       bytes, elapsed, elapsed > 0 ? (double)sent / elapsed : 0.0);
	fflush(stdout);
	free(buf);
	free(scratch);
	return (failed || sent < o->count) ? 1 : 0;
}

/* ---- receiver ---- */
static int run_receiver(const struct options *o, pgm_sock_t *sock)
{
	uint8_t *buf = aligned_alloc(64, RECV_BUF_SIZE);
	if (!buf) {
		fprintf(stderr, "openpgm_peer: out of memory\n");
		return 1;
	}
	uint64_t received = 0, gaps = 0, duplicates = 0, corrupt = 0, unrecoverable = 0;
	uint64_t expected = 0, first_seq = 0, last_seq = 0;
	bool have_first = false;
	double t_first = 0, t_last = 0;
	double idle_deadline = now_s() + o->timeout;

	fprintf(stderr, "READY\n");
	fflush(stderr);

	while (!g_stop && received < o->count) {
		const double now = now_s();
		if (now >= idle_deadline) {
			if (!o->quiet)
				fprintf(stderr, "openpgm_peer: no data for %.1f s, giving up\n", o->timeout);
			break;
		}
		size_t len = 0;
		struct pgm_sockaddr_t from;
		socklen_t fromlen = sizeof from;
		pgm_error_t *err = NULL;
		const int st = pgm_recvfrom(sock, buf, RECV_BUF_SIZE, 0, &len, &from, &fromlen, &err);
		int wait_ms = -1;
		switch (st) {
		case PGM_IO_STATUS_NORMAL: {
			const double t = now_s();
			idle_deadline = t + o->timeout;
			if (len < 12 || len != message_size(o, get_be64(buf)) ||
			    get_be32(buf + 8) != crc32_ieee(buf + 12, len - 12)) {
				corrupt++;
				if (!o->quiet)
					fprintf(stderr, "openpgm_peer: corrupt message (%zu bytes)\n", len);
				break;
			}
			const uint64_t seq = get_be64(buf);
			if (!have_first) {
				have_first = true;
				first_seq = seq;
				t_first = t;
			}
			if (seq < expected) {
				duplicates++;
				break;
			}
			if (seq > expected) {
				gaps += seq - expected;
				if (!o->quiet)
					fprintf(stderr, "openpgm_peer: gap: expected %" PRIu64 ", got %" PRIu64 "\n",
						expected, seq);
			}
			expected = seq + 1;
			last_seq = seq;
			received++;
			t_last = t;
			break;
		}
		case PGM_IO_STATUS_RESET:
			unrecoverable++;
			if (!o->quiet)
				fprintf(stderr, "openpgm_peer: unrecoverable loss: %s\n",
					err && err->message ? err->message : "(no message)");
			break;
		case PGM_IO_STATUS_FIN:
			if (!o->quiet)
				fprintf(stderr, "openpgm_peer: source finished\n");
			break;
		case PGM_IO_STATUS_TIMER_PENDING:
			wait_ms = timeval_opt_ms(sock, PGM_TIME_REMAIN);
			break;
		case PGM_IO_STATUS_RATE_LIMITED:
			wait_ms = timeval_opt_ms(sock, PGM_RATE_REMAIN);
			break;
		case PGM_IO_STATUS_WOULD_BLOCK:
			wait_ms = 100;
			break;
		default:
			fprintf(stderr, "openpgm_peer: pgm_recvfrom failed (status %d): %s\n", st,
				err && err->message ? err->message : "?");
			wait_ms = 10;
			break;
		}
		if (err)
			pgm_error_free(err);
		if (wait_ms >= 0) {
			const int left = (int)((idle_deadline - now_s()) * 1000.0) + 1;
			wait_socket(sock, wait_ms < left ? wait_ms : left, false);
		}
	}

	const double elapsed = (received > 1) ? t_last - t_first : 0.0;
	printf("{\"received\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"corrupt\":%" PRIu64
	       ",\"unrecoverable\":%" PRIu64 ",\"elapsed_s\":%.6f,\"msgs_per_s\":%.1f,\"first_seq\":%" PRIu64
	       ",\"last_seq\":%" PRIu64 "}\n",
	       received, gaps, duplicates, corrupt, unrecoverable, elapsed,
	       elapsed > 0 ? (double)received / elapsed : 0.0, first_seq, last_seq);
	fflush(stdout);
	free(buf);
	return (gaps || corrupt || unrecoverable || received < o->count) ? 1 : 0;
}

/* ---- ping / reflect ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t secs_ns(double s)
{
	return s > 0 ? (uint64_t)(s * 1e9) : 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Peak RSS of this process, KiB. */
static long max_rss_kb(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

/* Microseconds until an OpenPGM timer (PGM_TIME_REMAIN / PGM_RATE_REMAIN), at least 0. */
static int64_t timeval_opt_us(pgm_sock_t *sock, int opt)
{
	struct timeval tv;
	socklen_t len = sizeof tv;
	if (!pgm_getsockopt(sock, IPPROTO_PGM, opt, &tv, &len))
		return 1000;
	const int64_t us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	return us < 0 ? 0 : us;
}

/* One direction each way: a SEND_ONLY socket for ours, a RECV_ONLY socket for the other's. */
struct link {
	pgm_sock_t *tx;
	pgm_sock_t *rx;
	uint8_t *scratch;   /* what tx's receive path reads (NAKs, SPMRs, other sessions' packets) */
	size_t msss;        /* largest unfragmented payload on tx */
	bool spin;
	bool quiet;
	bool tx_ready;      /* tx's descriptors were readable: service it */
	uint64_t tx_due_ns; /* tx's next timer (mono_ns) */
	unsigned idle;      /* empty polls in spin mode */
	uint64_t resets;    /* unrecoverable-loss reports on rx */
};

/* Runs tx's receive path without blocking: answers NAKs (NCF, RDATA) and SPMRs, sends SPMs,
 * drains what its socket got; notes when its next timer is due. */
static void service_tx(struct link *l)
{
	int64_t wait_us = 0; /* 0: more to read, come back at once */
	for (int i = 0; i < 64; i++) {
		size_t len = 0;
		pgm_error_t *err = NULL;
		const int st = pgm_recvfrom(l->tx, l->scratch, RECV_BUF_SIZE, MSG_DONTWAIT, &len, NULL, NULL, &err);
		if (err)
			pgm_error_free(err);
		if (st == PGM_IO_STATUS_NORMAL || st == PGM_IO_STATUS_RESET || st == PGM_IO_STATUS_FIN)
			continue; /* a send-only socket should not see these; keep draining */
		if (st == PGM_IO_STATUS_TIMER_PENDING)
			wait_us = timeval_opt_us(l->tx, PGM_TIME_REMAIN);
		else if (st == PGM_IO_STATUS_RATE_LIMITED)
			wait_us = timeval_opt_us(l->tx, PGM_RATE_REMAIN);
		else if (st == PGM_IO_STATUS_WOULD_BLOCK)
			wait_us = -1;
		else
			wait_us = 1000;
		break;
	}
	l->tx_ready = false;
	l->tx_due_ns = wait_us < 0 ? UINT64_MAX : mono_ns() + (uint64_t)wait_us * 1000u;
}

/* Sleeps in ppoll() on both sockets' descriptors for at most timeout_ns. */
static void wait_link(struct link *l, uint64_t timeout_ns, bool tx_out)
{
	struct pollfd fds[16];
	int nrx = 8, ntx = 8;
	memset(fds, 0, sizeof fds);
	if (pgm_poll_info(l->rx, fds, &nrx, POLLIN) < 0)
		nrx = 0;
	if (pgm_poll_info(l->tx, fds + nrx, &ntx, POLLIN | (tx_out ? POLLOUT : 0)) < 0)
		ntx = 0;
	const struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
				    .tv_nsec = (long)(timeout_ns % 1000000000u)};
	if (ppoll(fds, (nfds_t)(nrx + ntx), &ts, NULL) > 0) {
		for (int i = nrx; i < nrx + ntx; i++)
			if (fds[i].revents & (POLLIN | POLLERR | POLLHUP))
				l->tx_ready = true;
	}
}

/* The next message from rx into buf (its length in *len), or false once deadline_ns passed. */
static bool link_recv(struct link *l, uint8_t *buf, size_t *len, uint64_t deadline_ns)
{
	for (;;) {
		size_t n = 0;
		pgm_error_t *err = NULL;
		const int st = pgm_recvfrom(l->rx, buf, RECV_BUF_SIZE, MSG_DONTWAIT, &n, NULL, NULL, &err);
		int64_t rx_wait_us = -1;
		switch (st) {
		case PGM_IO_STATUS_NORMAL:
			if (err)
				pgm_error_free(err);
			*len = n <= RECV_BUF_SIZE ? n : RECV_BUF_SIZE;
			return true;
		case PGM_IO_STATUS_RESET:
			l->resets++;
			if (!l->quiet)
				fprintf(stderr, "openpgm_peer: unrecoverable loss: %s\n",
					err && err->message ? err->message : "(no message)");
			rx_wait_us = 0;
			break;
		case PGM_IO_STATUS_FIN:
			rx_wait_us = 0;
			break;
		case PGM_IO_STATUS_TIMER_PENDING:
			rx_wait_us = timeval_opt_us(l->rx, PGM_TIME_REMAIN);
			break;
		case PGM_IO_STATUS_RATE_LIMITED:
			rx_wait_us = timeval_opt_us(l->rx, PGM_RATE_REMAIN);
			break;
		case PGM_IO_STATUS_WOULD_BLOCK:
			break;
		default:
			if (!l->quiet)
				fprintf(stderr, "openpgm_peer: pgm_recvfrom failed (status %d): %s\n", st,
					err && err->message ? err->message : "?");
			rx_wait_us = 1000;
			break;
		}
		if (err)
			pgm_error_free(err);
		uint64_t now = mono_ns();
		if (l->tx_ready || now >= l->tx_due_ns) {
			service_tx(l);
			now = mono_ns();
		}
		if (now >= deadline_ns || g_stop)
			return false;
		if (l->spin) {
			/* The raw socket of tx gets a copy of every PGM packet: drain it now and then. */
			if ((++l->idle & 15) == 0)
				l->tx_ready = true;
			continue;
		}
		uint64_t until = min_u64(deadline_ns, l->tx_due_ns);
		if (rx_wait_us >= 0)
			until = min_u64(until, now + (uint64_t)rx_wait_us * 1000u);
		if (until > now)
			wait_link(l, until - now, false);
	}
}

/* Sends one message (16-byte aligned, at most l->msss bytes) on tx; false on failure or once
 * deadline_ns passed. */
static bool link_send(struct link *l, const uint8_t *msg, size_t len, uint64_t deadline_ns)
{
	for (;;) {
		size_t written = 0;
		const int st = pgm_send(l->tx, msg, len, &written);
		if (st == PGM_IO_STATUS_NORMAL)
			return true;
		if (st != PGM_IO_STATUS_WOULD_BLOCK && st != PGM_IO_STATUS_RATE_LIMITED &&
		    st != PGM_IO_STATUS_CONGESTION) {
			fprintf(stderr, "openpgm_peer: pgm_send failed with status %d\n", st);
			return false;
		}
		service_tx(l);
		const uint64_t now = mono_ns();
		if (now >= deadline_ns || g_stop) {
			fprintf(stderr, "openpgm_peer: send timed out\n");
			return false;
		}
		if (!l->spin)
			wait_link(l, min_u64(deadline_ns - now, 1000000u), true);
	}
}

/* Opens the receiving socket first (so an answer never finds it missing), then the sending one. */
static bool open_link(const struct options *o, struct link *l, const char *send_net, int send_port,
		      const char *recv_net, int recv_port)
{
	memset(l, 0, sizeof *l);
	l->spin = o->spin;
	l->quiet = o->quiet;
	l->scratch = aligned_alloc(64, RECV_BUF_SIZE);
	if (!l->scratch) {
		fprintf(stderr, "openpgm_peer: out of memory\n");
		return false;
	}
	l->rx = open_socket(o, recv_net, recv_port, false);
	if (!l->rx)
		goto fail;
	l->tx = open_socket(o, send_net, send_port, true);
	if (!l->tx)
		goto fail;
	int tmp = 0;
	socklen_t len = sizeof tmp;
	if (!pgm_getsockopt(l->tx, IPPROTO_PGM, PGM_MSSS, &tmp, &len) || tmp <= 0) {
		fprintf(stderr, "openpgm_peer: cannot read PGM_MSSS\n");
		goto fail;
	}
	l->msss = (size_t)tmp;
	return true;
fail:
	if (l->tx)
		pgm_close(l->tx, FALSE);
	if (l->rx)
		pgm_close(l->rx, FALSE);
	free(l->scratch);
	memset(l, 0, sizeof *l);
	return false;
}

static void close_link(struct link *l)
{
	/* TRUE: the source sends its FIN SPMs. */
	pgm_close(l->tx, TRUE);
	pgm_close(l->rx, FALSE);
	free(l->scratch);
	memset(l, 0, sizeof *l);
}

static int cmp_u64(const void *a, const void *b)
{
	const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The sample at per-mille `pm` of n sorted samples: the smallest value with at least pm/1000 of
 * the samples at or below it (HdrHistogram's value_at_quantile, without its bucketing). */
static uint64_t at_permille(const uint64_t *sorted, uint64_t n, uint64_t pm)
{
	uint64_t rank = (n * pm + 999) / 1000;
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

static int run_ping(const struct options *o)
{
	struct link l;
	if (!open_link(o, &l, o->network, o->port, o->network2, o->port2))
		return 1;
	if (o->size > l.msss) {
		fprintf(stderr, "openpgm_peer: --size %zu exceeds one TPDU (PGM_MSSS %zu)\n", o->size, l.msss);
		close_link(&l);
		return 2;
	}
	uint8_t *msg = aligned_alloc(64, (o->size + 63) / 64 * 64);
	uint8_t *buf = aligned_alloc(64, RECV_BUF_SIZE);
	uint64_t *samples = malloc((o->count > 0 ? o->count : 1) * sizeof(uint64_t));
	if (!msg || !buf || !samples) {
		fprintf(stderr, "openpgm_peer: out of memory\n");
		close_link(&l);
		return 1;
	}
	memset(msg, 0, o->size);
	fprintf(stderr, "READY\n");
	fflush(stderr);

	const uint64_t start = mono_ns();
	const uint64_t end = start + secs_ns(o->max_secs);
	uint64_t warmup = o->warmup, total = o->warmup + o->count;
	uint64_t i = 0, received = 0, lost = 0;
	/* Until the first answer (the sessions are still being set up) pings are retried. */
	bool answered = false, failed = false;
	while (i < total && !g_stop) {
		const uint64_t t0 = mono_ns();
		if (t0 >= end)
			break;
		put_be64(msg, i);
		put_be64(msg + 8, t0);
		if (!link_send(&l, msg, o->size, end)) {
			failed = true;
			break;
		}
		const uint64_t deadline = min_u64(t0 + secs_ns(o->ping_timeout), end);
		bool got = false;
		size_t len = 0;
		while (link_recv(&l, buf, &len, deadline)) {
			if (len == o->size && len >= 8 && get_be64(buf) == i) {
				got = true;
				break;
			}
		}
		const uint64_t t1 = mono_ns();
		/* The warm-up ends after --warmup round trips or 2 s, whichever comes first. */
		if (i < warmup && t1 - start > 2000000000u) {
			warmup = i;
			total = warmup + o->count;
		}
		if (got) {
			answered = true;
			if (i >= warmup && received < o->count)
				samples[received++] = t1 > t0 ? t1 - t0 : 1;
		} else if (!answered) {
			continue;
		} else if (i >= warmup) {
			lost++;
		}
		i++;
		if (o->interval_us > 0) {
			const struct timespec pause = {.tv_sec = o->interval_us / 1000000,
						       .tv_nsec = (o->interval_us % 1000000) * 1000};
			nanosleep(&pause, NULL);
		}
	}
	const double elapsed = (double)(mono_ns() - start) / 1e9;
	put_be64(msg, STOP_WORD);
	for (int k = 0; k < 3 && !failed; k++)
		(void)link_send(&l, msg, o->size, mono_ns() + 1000000000u);
	const uint64_t resets = l.resets;
	close_link(&l);

	int rc = 0;
	if (received == 0) {
		fprintf(stderr, "openpgm_peer: no answer from the reflector (%" PRIu64 " pings, %" PRIu64 " lost)\n",
			i, lost);
		rc = 1;
	} else {
		qsort(samples, received, sizeof samples[0], cmp_u64);
		long double sum = 0;
		for (uint64_t k = 0; k < received; k++)
			sum += samples[k];
		const double us = 1e-3;
		printf("{\"mode\":\"%s\",\"spin\":%s,\"busy_poll\":\"off\",\"size\":%zu,\"count\":%" PRIu64
		       ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"min_us\":%.1f,\"mean_us\":%.1f"
		       ",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f"
		       ",\"elapsed_s\":%.3f,\"max_rss_kb\":%ld,\"resets\":%" PRIu64 "}\n",
		       o->udp ? "epgm" : "pgm", o->spin ? "true" : "false", o->size, o->count, received, lost,
		       (double)samples[0] * us, (double)(sum / received) * us,
		       (double)at_permille(samples, received, 500) * us,
		       (double)at_permille(samples, received, 900) * us,
		       (double)at_permille(samples, received, 990) * us,
		       (double)at_permille(samples, received, 999) * us, (double)samples[received - 1] * us,
		       elapsed, max_rss_kb(), resets);
		fflush(stdout);
		if (failed)
			rc = 1;
	}
	free(samples);
	free(buf);
	free(msg);
	return rc;
}

static int run_reflect(const struct options *o)
{
	struct link l;
	/* Pings come in on --network/--port, answers go out on --network2/--port2. */
	if (!open_link(o, &l, o->network2, o->port2, o->network, o->port))
		return 1;
	uint8_t *buf = aligned_alloc(64, RECV_BUF_SIZE);
	if (!buf) {
		fprintf(stderr, "openpgm_peer: out of memory\n");
		close_link(&l);
		return 1;
	}
	fprintf(stderr, "READY\n");
	fflush(stderr);

	const uint64_t start = mono_ns();
	uint64_t reflected = 0, ignored = 0, last = 0;
	bool have_last = false, failed = false;
	for (;;) {
		const uint64_t now = mono_ns();
		uint64_t deadline = start + secs_ns(o->max_secs);
		if (have_last)
			deadline = min_u64(deadline, last + secs_ns(o->timeout));
		if (now >= deadline || g_stop)
			break;
		size_t len = 0;
		if (!link_recv(&l, buf, &len, min_u64(deadline, now + 100000000u)))
			continue;
		last = mono_ns();
		have_last = true;
		if (len >= 8 && get_be64(buf) == STOP_WORD)
			break;
		/* Only what fits one TPDU goes back: pgm_send of more would fragment (see the top). */
		if (len == 0 || len > l.msss) {
			ignored++;
			continue;
		}
		if (!link_send(&l, buf, len, last + 1000000000u)) {
			failed = true;
			break;
		}
		reflected++;
	}
	close_link(&l);
	printf("{\"reflected\":%" PRIu64 ",\"ignored\":%" PRIu64 ",\"max_rss_kb\":%ld}\n", reflected, ignored,
	       max_rss_kb());
	fflush(stdout);
	free(buf);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct options o;
	parse_args(argc, argv, &o);
	crc_init();
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	pgm_error_t *err = NULL;
	if (!pgm_init(&err)) {
		fprintf(stderr, "openpgm_peer: pgm_init: %s\n", err && err->message ? err->message : "?");
		pgm_error_free(err);
		return 1;
	}
	if (o.role == ROLE_PING || o.role == ROLE_REFLECT) {
		const int rc = o.role == ROLE_PING ? run_ping(&o) : run_reflect(&o);
		pgm_shutdown();
		return rc;
	}
	pgm_sock_t *sock = open_socket(&o, o.network, o.port, o.send);
	if (!sock) {
		pgm_shutdown();
		return 1;
	}
	const int rc = o.send ? run_sender(&o, sock) : run_receiver(&o, sock);
	/* TRUE: a source sends its FIN SPMs (OPT_FIN) here. */
	pgm_close(sock, o.send ? TRUE : FALSE);
	pgm_shutdown();
	return rc;
}
