#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets (tests/fuzz/corpus/<target>/): well-formed
queues and requests, and one example of each rule the device side enforces, so fuzzing
starts from inputs that reach deep. Re-run after changing an input layout."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD = 0, 1, 4, 8, 11


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


class Ram:
    def __init__(self, size):
        self.b = bytearray(size)

    def put(self, at, data):
        self.b[at:at + len(data)] = data


def queue_ram(size, desc_at, avail_at, chains, table, ram_size):
    """chains: heads made available; table: {index: desc bytes}."""
    ram = Ram(ram_size)
    for i, d in table.items():
        ram.put(desc_at + 16 * i, d)
    ram.put(avail_at, struct.pack("<HH", 0, len(chains)))
    for n, head in enumerate(chains):
        ram.put(avail_at + 4 + 2 * n, struct.pack("<H", head))
    return ram


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def virtqueue_seeds():
    # [size_log2][desc][avail][used][chain_limit] + RAM; rings at 0x0/0x400/0x800, size 16.
    def seed(name, table, chains, limit=0, size_log2=4, at=(0x0, 0x400, 0x800)):
        ram = queue_ram(1 << size_log2, at[0], at[1], chains, table, 0x1000)
        params = struct.pack("<BHHHB", size_log2, *at, limit)
        write("fuzz_virtqueue", name, params + ram.b)

    seed("ok-two-chains", {0: desc(0xC00, 16, F_NEXT, 1), 1: desc(0xD00, 1, F_WRITE),
                           2: desc(0xE00, 8)}, [0, 2])
    seed("loop", {0: desc(0xC00, 16, F_NEXT, 1), 1: desc(0xC00, 16, F_NEXT, 0)}, [0])
    seed("next-out-of-range", {0: desc(0xC00, 16, F_NEXT, 40)}, [0])
    seed("head-out-of-range", {}, [17])
    seed("buffer-out-of-range", {0: desc(0xFFF0, 0x20)}, [0])
    seed("wrong-direction", {0: desc(0xC00, 4, F_WRITE | F_NEXT, 1), 1: desc(0xC00, 4)}, [0])
    seed("indirect", {0: desc(0xC00, 32, F_INDIRECT)}, [0])
    seed("chain-limit", {i: desc(0xC00, 4, F_NEXT, i + 1) for i in range(5)}, [0], limit=3)
    seed("misaligned", {}, [], at=(0x8, 0x400, 0x800))
    seed("size-256", {0: desc(0xC00, 4)}, [0], size_log2=8, at=(0x0, 0x1000, 0x1400))


def blk_seeds():
    # RAM: descriptors at 0x0, avail at 0x100, used at 0x200 (size 16); headers from 0x400,
    # status bytes from 0x600, data from 0x800. Last byte odd = read-only disk.
    def request(table, chains, headers, name, read_only=False):
        ram = queue_ram(16, 0x0, 0x100, chains, table, 0x2000)
        for at, (typ, sector) in headers.items():
            ram.put(at, struct.pack("<IIQ", typ, 0, sector))
        ram.b[-1] = 1 if read_only else 0
        write("fuzz_virtio_blk", name, ram.b)

    def simple(typ, sector, data_len, data_writable, name, **kw):
        table = {0: desc(0x400, 16, F_NEXT, 1)}
        if data_len:
            table[1] = desc(0x800, data_len, (F_WRITE if data_writable else 0) | F_NEXT, 2)
            table[2] = desc(0x600, 1, F_WRITE)
        else:
            table[0] = desc(0x400, 16, F_NEXT, 2)
            table[2] = desc(0x600, 1, F_WRITE)
        request(table, [0], {0x400: (typ, sector)}, name, **kw)

    simple(T_IN, 3, 1024, True, "read")
    simple(T_OUT, 5, 512, False, "write")
    simple(T_OUT, 5, 512, False, "write-read-only", read_only=True)
    simple(T_FLUSH, 0, 0, False, "flush")
    simple(T_GET_ID, 0, 20, True, "get-id")
    simple(T_DISCARD, 0, 16, False, "discard")
    simple(T_IN, 63, 1024, True, "read-past-end")
    simple(T_IN, 0, 100, True, "read-odd-length")
    # Three requests in one go, header split over two descriptors in the second.
    table = {0: desc(0x400, 16, F_NEXT, 1), 1: desc(0x800, 512, F_WRITE | F_NEXT, 2),
             2: desc(0x600, 1, F_WRITE),
             3: desc(0x410, 7, F_NEXT, 4), 4: desc(0x417, 9, F_NEXT, 5),
             5: desc(0xA00, 512, F_NEXT, 6), 6: desc(0x601, 1, F_WRITE),
             7: desc(0x420, 16, F_NEXT, 8), 8: desc(0x602, 1, F_WRITE)}
    request(table, [0, 3, 7], {0x400: (T_IN, 1), 0x410: (T_OUT, 2), 0x420: (T_FLUSH, 0)},
            "three-requests")
    request({0: desc(0x400, 16)}, [0], {0x400: (T_IN, 0)}, "no-status")


def net_seeds():
    # RAM (0x4000): receive queue at 0x0/0x100/0x200, transmit queue at 0x400/0x500/0x600,
    # both size 16; transmit headers+frames from 0x1000, receive buffers from 0x2000. After
    # RAM: frames the backend delivers, [len:le16][bytes] each.
    def seed(name, rx_table, rx_chains, tx_table, tx_chains, frames=()):
        ram = Ram(0x4000)
        for i, d in rx_table.items():
            ram.put(0x0 + 16 * i, d)
        ram.put(0x100, struct.pack("<HH", 0, len(rx_chains)))
        for n, head in enumerate(rx_chains):
            ram.put(0x100 + 4 + 2 * n, struct.pack("<H", head))
        for i, d in tx_table.items():
            ram.put(0x400 + 16 * i, d)
        ram.put(0x500, struct.pack("<HH", 0, len(tx_chains)))
        for n, head in enumerate(tx_chains):
            ram.put(0x500 + 4 + 2 * n, struct.pack("<H", head))
        arp = bytes([0xFF] * 6 + [0x52, 0x54, 0, 0, 0, 2, 8, 6]) + bytes(46)
        ram.put(0x1000, bytes(12) + arp)
        tail = b"".join(struct.pack("<H", len(f)) + f for f in frames)
        write("fuzz_virtio_net", name, ram.b + tail)

    arp = bytes([0xFF] * 6 + [0x52, 0x54, 0, 0, 0, 9, 8, 6]) + bytes(46)
    rx = {i: desc(0x2000 + 0x600 * i, 1526, F_WRITE) for i in range(4)}
    seed("transmit", {}, [], {0: desc(0x1000, 72)}, [0])
    seed("transmit-split", {}, [], {0: desc(0x1000, 12, F_NEXT, 1), 1: desc(0x100C, 60)}, [0])
    seed("receive", rx, [0, 1, 2, 3], {}, [], [arp, arp])
    seed("receive-split", {0: desc(0x2000, 12, F_WRITE | F_NEXT, 1), 1: desc(0x2010, 1514, F_WRITE)},
         [0], {}, [], [arp])
    seed("receive-small-buffer", {0: desc(0x2000, 40, F_WRITE)}, [0], {}, [], [arp])
    seed("receive-bad-frames", rx, [0, 1, 2, 3], {}, [], [b"x" * 5, b"", b"y" * 1515, arp])
    seed("transmit-oversized", {}, [], {0: desc(0x1000, 12, F_NEXT, 1), 1: desc(0x1000, 1515)}, [0])
    seed("transmit-writable", {}, [], {0: desc(0x1000, 72, F_WRITE)}, [0])
    seed("receive-readable", {0: desc(0x2000, 1526)}, [0], {}, [], [arp])
def console_seeds():
    # RAM 0x4000: receiveq at 0x0/0x100/0x200, transmitq at 0x400/0x500/0x600; the last
    # 64 bytes are also the host's input.
    def seed(name, rx, tx):
        ram = Ram(0x4000)
        for (desc_at, avail_at), (table, chains) in (((0x0, 0x100), rx), ((0x400, 0x500), tx)):
            for i, d in table.items():
                ram.put(desc_at + 16 * i, d)
            ram.put(avail_at, struct.pack("<HH", 0, len(chains)))
            for n, head in enumerate(chains):
                ram.put(avail_at + 4 + 2 * n, struct.pack("<H", head))
        ram.put(0x1000, b"hello from the guest\n")
        ram.put(0x4000 - 64, b"typed by the host\n".ljust(64, b"x"))
        write("fuzz_virtio_console", name, ram.b)

    seed("echo", ({0: desc(0x2000, 32, F_WRITE), 1: desc(0x2100, 64, F_WRITE)}, [0, 1]),
         ({0: desc(0x1000, 21)}, [0]))
    seed("split", ({0: desc(0x2000, 8, F_WRITE | F_NEXT, 1), 1: desc(0x2100, 64, F_WRITE)}, [0]),
         ({0: desc(0x1000, 5, F_NEXT, 1), 1: desc(0x1005, 16)}, [0]))
    seed("wrong-directions", ({0: desc(0x2000, 32)}, [0]), ({0: desc(0x1000, 21, F_WRITE)}, [0]))


virtqueue_seeds()
blk_seeds()
net_seeds()
console_seeds()
