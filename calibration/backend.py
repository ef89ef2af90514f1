#!/usr/bin/env python3
"""The calibration runs' tiny HTTP pieces, standard library only (issue #7).

  backend.py serve PORT DELAY_MS
      An upstream for nginx on 127.0.0.1:PORT: answers every request with 200 and a 2-byte
      body after DELAY_MS (one connection per request, as nginx talks HTTP/1.0 upstream);
      GET /metrics answers at once in the Prometheus text format (backend_requests_total).

  backend.py load URL_PREFIX RATE_PER_S DURATION_S SEED [ZIPF_N ZIPF_ALPHA]
      An open-loop load: Poisson arrivals at RATE_PER_S for DURATION_S, each request on its own
      connection (as the twin's users), GET URL_PREFIX + a key (a Zipf rank over 1..ZIPF_N with
      exponent ZIPF_ALPHA when given, else a sequence number). Prints one CSV line per request:
      sent_s,status,latency_ms (status 0: the connection failed or no answer in 90 s, or in
      the environment's LOAD_TIMEOUT_S: the client then closes its connection, as users give up).

  backend.py redis-incr PORT RATE_PER_S
      A steady write load on one Redis Cluster master: INCR of one counter whose hash slot is in
      0-5460 (the first master's range as redis-cli --cluster create assigns it), RATE_PER_S a
      second on one connection, until the connection fails (the master was killed) or SIGTERM.
      Prints the key and the last value the master acknowledged.
"""
import asyncio
import bisect
import os
import random
import sys
import time


async def serve(port, delay_ms):
    served = [0]

    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /metrics "):
                body = (
                    "# HELP backend_requests_total Requests answered.\n"
                    "# TYPE backend_requests_total counter\n"
                    f"backend_requests_total {served[0]}\n"
                ).encode()
                writer.write(
                    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                return
            await asyncio.sleep(delay_ms / 1000.0)
            served[0] += 1
            writer.write(
                b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def zipf_sampler(n, alpha, rng):
    cum, total = [], 0.0
    for k in range(1, n + 1):
        total += k ** -alpha
        cum.append(total)
    return lambda: bisect.bisect_left(cum, rng.random() * total) + 1


async def one(host, port, path, t0, out, timeout_s):
    sent = time.monotonic()
    status = 0
    writer = None

    async def exchange():
        nonlocal status, writer
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.0\r\nHost: cal\r\n\r\n".encode())
        await writer.drain()
        line = await reader.readline()
        status = int(line.split()[1]) if line else 0
        await reader.read()

    try:
        await asyncio.wait_for(exchange(), timeout_s)
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        status = 0
    if writer is not None:
        writer.close()
    out.append((sent - t0, status, (time.monotonic() - sent) * 1000.0))


async def load(prefix, rate, duration, seed, zipf):
    assert prefix.startswith("http://"), "URL_PREFIX is http://host:port/path/"
    hostport, _, path = prefix[len("http://"):].partition("/")
    host, _, port = hostport.partition(":")
    rng = random.Random(seed)
    key = zipf_sampler(zipf[0], zipf[1], rng) if zipf else None
    timeout_s = float(os.environ.get("LOAD_TIMEOUT_S", "90"))
    out, tasks, t0 = [], [], time.monotonic()
    t, seq = 0.0, 0
    while True:
        t += rng.expovariate(rate)
        if t >= duration:
            break
        delay = t0 + t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        seq += 1
        k = key() if key else seq
        tasks.append(asyncio.create_task(one(host, int(port), f"/{path}{k}", t0, out, timeout_s)))
    await asyncio.gather(*tasks)
    for sent, status, ms in sorted(out):
        print(f"{sent:.4f},{status},{ms:.2f}")


def crc16(data):
    """CRC16-CCITT (XMODEM), Redis Cluster's key hash."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def redis_incr(port, rate):
    import signal
    import socket

    key = next(f"calibration:{i}" for i in range(1000) if crc16(f"calibration:{i}".encode()) % 16384 < 5461)
    cmd = f"*2\r\n$4\r\nINCR\r\n${len(key)}\r\n{key}\r\n".encode()
    acked = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        s = socket.create_connection(("127.0.0.1", port), 2)
        f = s.makefile("rb")
        t0, n = time.monotonic(), 0
        while not stop:
            s.sendall(cmd)
            line = f.readline()
            if not line.startswith(b":"):
                break
            acked = int(line[1:])
            n += 1
            delay = t0 + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    except OSError:
        pass
    print(key, acked)


def main(argv):
    if len(argv) >= 3 and argv[0] == "serve":
        asyncio.run(serve(int(argv[1]), float(argv[2])))
    elif len(argv) == 3 and argv[0] == "redis-incr":
        redis_incr(int(argv[1]), float(argv[2]))
    elif len(argv) in (5, 7) and argv[0] == "load":
        zipf = (int(argv[5]), float(argv[6])) if len(argv) == 7 else None
        asyncio.run(load(argv[1], float(argv[2]), float(argv[3]), int(argv[4]), zipf))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
