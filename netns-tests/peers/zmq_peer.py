#!/usr/bin/python3
"""libzmq 4.3.4 pgm:// / epgm:// interop peer (Debian python3-zmq) for the netns tests.

PUB mode sends COUNT two-frame messages [topic][payload], topic i mod T of --topics, the
payload a test message numbered per topic from 0 in pgm-send's format (bytes 0..8 the sequence
number, u64 BE; 8..12 the CRC-32 (IEEE) of bytes 12.., u32 BE; filler), sizes spread over
--size MIN-MAX as pgm-pub does. It prints READY on stderr once connected, one JSON line on
stdout once everything is queued ({"sent","bytes","topics"}), then keeps the socket open (so
OpenPGM answers NAKs) until SIGTERM/SIGINT or --linger seconds pass.

SUB mode subscribes to each --subscribe prefix (none: nothing, as in ZeroMQ), prints READY,
receives until --count messages arrived or --timeout seconds pass without one, checks every
topic's sequence and the CRCs, and prints one JSON line {"received","topics","gaps",
"duplicates","corrupt","elapsed_s","msgs_per_s"}; it exits 1 when anything is missing or bad.

libzmq facts this relies on (docs/wire-compatibility.md §13): ZMQ_RATE is kbit/s and, with
ZMQ_RECOVERY_IVL (ms), sizes the transmit/receive windows; multicast loop is off (PUB and SUB
must be on different hosts); TTL defaults to 1; the PUB's SNDHWM must be unlimited or messages
queued behind the rate limiter are dropped silently.
"""

import argparse
import json
import math
import signal
import sys
import time
import zlib

import zmq

MASK64 = (1 << 64) - 1


def parse_size(s):
    lo, _, hi = s.partition("-")
    lo = int(lo)
    hi = int(hi) if hi else lo
    if lo < 12 or hi < lo:
        raise argparse.ArgumentTypeError(f"bad size {s!r}: MIN-MAX, MIN >= 12")
    return lo, hi


def size_of(rng, i):
    """pgm-pub's SizeRange::size_of: log-uniform by a splitmix64 hash, the bounds every 16."""
    lo, hi = rng
    if lo == hi:
        return lo
    if i % 16 == 0:
        return lo
    if i % 16 == 1:
        return hi
    z = (i + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    u = (z >> 11) / float(1 << 53)
    size = round(math.exp(math.log(max(lo, 1)) + u * (math.log(hi) - math.log(lo))))
    return min(max(size, lo), hi)


class Filler:
    """Test-message payloads: the filler of message `seq` is (start + k) & 255."""

    def __init__(self, max_size):
        self.base = bytes(range(256)) * (max_size // 256 + 2)

    def message(self, seq, size):
        start = ((seq * 0x9E3779B97F4A7C15) & MASK64) >> 56
        filler = self.base[start:start + size - 12]
        crc = zlib.crc32(filler) & 0xFFFFFFFF
        return seq.to_bytes(8, "big") + crc.to_bytes(4, "big") + filler


def check(payload):
    """The sequence number of an intact test message, else None."""
    if len(payload) < 12:
        return None
    crc = int.from_bytes(payload[8:12], "big")
    if zlib.crc32(payload[12:]) & 0xFFFFFFFF != crc:
        return None
    return int.from_bytes(payload[:8], "big")


def common_options(sock, args):
    sock.setsockopt(zmq.RATE, args.rate)
    sock.setsockopt(zmq.RECOVERY_IVL, args.recovery_ivl)
    sock.setsockopt(zmq.MULTICAST_HOPS, args.hops)
    sock.setsockopt(zmq.SNDBUF, 4 << 20)
    sock.setsockopt(zmq.RCVBUF, 4 << 20)
    sock.setsockopt(zmq.LINGER, 0)


STOP = []


def on_signal(signum, _frame):
    STOP.append(signum)


def run_pub(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    common_options(sock, args)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(args.endpoint)
    # The pgm socket is created by libzmq's IO thread; give it time to send its first SPMs.
    time.sleep(args.settle)
    print("READY", file=sys.stderr, flush=True)
    topics = args.topics.split(",")
    seqs = {}
    counts = {}
    filler = Filler(args.size[1])
    sent = 0
    nbytes = 0
    for i in range(args.count):
        topic = topics[i % len(topics)]
        seq = seqs.get(topic, 0)
        seqs[topic] = seq + 1
        payload = filler.message(seq, size_of(args.size, i))
        t = topic.encode()
        sock.send_multipart([t, payload], copy=False)
        counts[topic] = counts.get(topic, 0) + 1
        sent += 1
        nbytes += len(t) + len(payload)
        if STOP:
            break
    print(json.dumps({"sent": sent, "bytes": nbytes, "topics": counts}), flush=True)
    deadline = time.monotonic() + args.linger
    while not STOP and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"zmq_peer: closing ({'signal' if STOP else 'linger over'})",
          file=sys.stderr, flush=True)
    sock.close(0)
    ctx.term()


def run_sub(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    common_options(sock, args)
    sock.setsockopt(zmq.RCVHWM, 0)
    for p in args.subscribe:
        sock.setsockopt(zmq.SUBSCRIBE, p.encode())
    sock.connect(args.endpoint)
    print("READY", file=sys.stderr, flush=True)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    nxt = {}
    topics = {}
    received = gaps = duplicates = corrupt = 0
    first = last = None
    idle_since = time.monotonic()
    while received < args.count and not STOP:
        left = args.timeout - (time.monotonic() - idle_since)
        if left <= 0:
            break
        if not poller.poll(min(left, 0.25) * 1000):
            continue
        frames = sock.recv_multipart()
        now = time.monotonic()
        idle_since = now
        first = first if first is not None else now
        last = now
        received += 1
        topic = frames[0].decode("utf-8", "replace")
        topics[topic] = topics.get(topic, 0) + 1
        seq = check(frames[1]) if len(frames) == 2 else None
        if seq is None:
            corrupt += 1
            continue
        expect = nxt.setdefault(topic, seq)
        if seq < expect:
            duplicates += 1
            continue
        gaps += seq - expect
        nxt[topic] = seq + 1
    elapsed = (last - first) if first is not None else 0.0
    report = {
        "received": received,
        "topics": topics,
        "gaps": gaps,
        "duplicates": duplicates,
        "corrupt": corrupt,
        "elapsed_s": round(elapsed, 3),
        "msgs_per_s": round(received / elapsed) if elapsed > 0 else 0,
    }
    print(json.dumps(report), flush=True)
    sock.close(0)
    ctx.term()
    return 0 if received >= args.count and gaps == 0 and corrupt == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["pub", "sub"])
    ap.add_argument("endpoint", help="epgm://ADDR;GROUP:PORT or pgm://ADDR;GROUP:PORT")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--topics", default="test", help="PUB: comma-separated topics")
    ap.add_argument("--size", type=parse_size, default=(64, 64), help="PUB: MIN-MAX bytes")
    ap.add_argument("--subscribe", action="append", default=[], help="SUB: topic prefix")
    ap.add_argument("--timeout", type=float, default=10.0, help="SUB: idle seconds")
    ap.add_argument("--rate", type=int, default=100_000, help="ZMQ_RATE, kbit/s")
    ap.add_argument("--recovery-ivl", type=int, default=10_000, help="ZMQ_RECOVERY_IVL, ms")
    ap.add_argument("--hops", type=int, default=1, help="ZMQ_MULTICAST_HOPS")
    ap.add_argument("--settle", type=float, default=0.5, help="PUB: seconds before sending")
    ap.add_argument("--linger", type=float, default=30.0, help="PUB: seconds open after sending")
    args = ap.parse_args()
    if not zmq.has("pgm"):
        print("zmq_peer: this libzmq has no pgm support", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.mode == "pub":
        run_pub(args)
        return 0
    return run_sub(args)


if __name__ == "__main__":
    sys.exit(main())
