#!/usr/bin/env python3
"""A bulk TCP flow for the TCP-friendliness test (netns-tests/tests/pgmcc_netns.rs).

  tcp_flow.py sink ADDR PORT MAX_SECS     accept one connection, read until EOF or MAX_SECS,
                                          printing "T BYTES" (CLOCK_MONOTONIC seconds, bytes so
                                          far) every 100 ms and at the end; "READY" on stderr
                                          once listening
  tcp_flow.py source ADDR PORT SECS       connect and send as fast as TCP allows for SECS
"""
import socket
import sys
import time


def sink(addr, port, max_secs):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(1)
    srv.settimeout(max_secs)
    print("READY", file=sys.stderr, flush=True)
    conn, _ = srv.accept()
    conn.settimeout(0.1)
    total = 0
    end = time.monotonic() + max_secs
    next_report = time.monotonic()
    while time.monotonic() < end:
        try:
            data = conn.recv(1 << 16)
            if not data:
                break
            total += len(data)
        except socket.timeout:
            pass
        now = time.monotonic()
        if now >= next_report:
            print(f"{now:.6f} {total}", flush=True)
            next_report = now + 0.1
    print(f"{time.monotonic():.6f} {total}", flush=True)


def source(addr, port, secs):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.connect((addr, port))
    chunk = b"\0" * (1 << 16)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s.sendall(chunk)
    s.close()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("sink", "source"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    role, addr, port, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    (sink if role == "sink" else source)(addr, port, secs)
