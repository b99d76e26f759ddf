#!/usr/bin/env python3
"""A TCP proxy in front of one devnet node's RPC port, driven by a control file, for benches/soak.sh.

The control file holds one word, re-read every 100 ms:
  pass          forward everything unchanged;
  cut           close every open connection and refuse new ones (the node looks dead to relayd);
  slow MS       delay every chunk from the node by MS milliseconds;
  corrupt KIND  change one answer from the node, then go back to `pass` by itself. KIND `hash` flips one hex digit
                of the next `"app_hash"` (a header that no longer matches its commit), KIND `value` flips one base64
                character of the next `"value"` (a query result that no longer matches its proof).
Every change the proxy makes is logged on stderr with a timestamp, so a soak can count what it injected.

  soak_proxy.py LISTEN_PORT TARGET_PORT CONTROL_FILE
"""
import asyncio
import sys
import time

LISTEN, TARGET, CONTROL = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
mode = ["pass"]
open_writers = set()
HEX_FLIP = {c: ("0" if c != "0" else "1") for c in "0123456789abcdefABCDEF"}


def log(msg):
    print(f"{time.time():.3f} proxy:{LISTEN} {msg}", file=sys.stderr, flush=True)


def corrupt(chunk: bytes) -> bytes | None:
    """The chunk with one character changed after the marker of the current corrupt mode, or None if absent."""
    kind = mode[0].split()[1] if len(mode[0].split()) > 1 else "hash"
    marker = b'"app_hash":"' if kind == "hash" else b'"value":"'
    i = chunk.find(marker)
    if i < 0:
        return None
    j = i + len(marker)
    if j >= len(chunk) or chunk[j:j + 1] == b'"':
        return None
    c = chr(chunk[j])
    if kind == "hash":
        new = HEX_FLIP.get(c)
    else:
        new = "A" if c != "A" else "B"
    if new is None:
        return None
    return chunk[:j] + new.encode() + chunk[j + 1:]


async def watch_control():
    last = None
    while True:
        try:
            with open(CONTROL) as f:
                word = f.read().strip() or "pass"
        except OSError:
            word = "pass"
        if word != last:
            log(f"mode {word}")
            mode[0] = word
            last = word
            if word == "cut":
                for w in list(open_writers):
                    w.close()
        await asyncio.sleep(0.1)


async def pipe(reader, writer, from_node: bool):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if from_node:
                m = mode[0]
                if m.startswith("slow"):
                    await asyncio.sleep(int(m.split()[1]) / 1000)
                elif m.startswith("corrupt"):
                    changed = corrupt(data)
                    if changed is not None:
                        data = changed
                        log(f"corrupted one answer ({m})")
                        with open(CONTROL, "w") as f:
                            f.write("pass")
                        mode[0] = "pass"
            if mode[0] == "cut":
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    if mode[0] == "cut":
        client_writer.close()
        return
    try:
        node_reader, node_writer = await asyncio.open_connection("127.0.0.1", TARGET)
    except OSError:
        client_writer.close()
        return
    open_writers.update((client_writer, node_writer))
    try:
        await asyncio.gather(
            pipe(client_reader, node_writer, False), pipe(node_reader, client_writer, True)
        )
    finally:
        open_writers.discard(client_writer)
        open_writers.discard(node_writer)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    asyncio.create_task(watch_control())
    log(f"forwarding to {TARGET}")
    async with server:
        await server.serve_forever()


asyncio.run(main())
