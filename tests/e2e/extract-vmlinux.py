#!/usr/bin/python3
"""Extract the uncompressed ELF vmlinux from an x86 bzImage (vmlinuz).

QEMU's microvm boots an uncompressed ELF kernel through its PVH entry point
(Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY), which skips the real-mode setup and
the in-guest decompression.  Debian compresses the payload with xz; lzma,
gzip and bzip2 payloads are handled too (zstd/lz4/lzo are not: no stdlib).

usage: extract-vmlinux.py VMLINUZ OUT
"""
import bz2
import gzip
import lzma
import os
import struct
import sys
import zlib


def die(msg):
    sys.stderr.write("extract-vmlinux: %s\n" % msg)
    sys.exit(1)


def payload_of(img):
    # Linux boot protocol >= 2.08: setup_sects at 0x1f1, "HdrS" at 0x202,
    # payload_offset/payload_length at 0x248/0x24c (relative to the
    # protected-mode code, which starts after the setup sectors).
    if len(img) < 0x250 or img[0x202:0x206] != b"HdrS":
        die("not a bzImage (no HdrS header)")
    version = struct.unpack_from("<H", img, 0x206)[0]
    if version < 0x208:
        die("boot protocol %#x too old (need >= 2.08)" % version)
    setup_sects = img[0x1f1] or 4
    off, length = struct.unpack_from("<II", img, 0x248)
    start = (setup_sects + 1) * 512 + off
    return img[start:start + length]


def decompress(data):
    if data.startswith(b"\xfd7zXZ\x00"):
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        return d.decompress(data)
    if data.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    if data.startswith(b"BZh"):
        return bz2.BZ2Decompressor().decompress(data)
    if data.startswith(b"\x5d\x00\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)
    die("unsupported payload compression (magic %s)" % data[:6].hex())


def has_pvh_note(elf):
    # Walk the program headers for PT_NOTE segments and look for the Xen
    # note of type 18 (XEN_ELFNOTE_PHYS32_ENTRY).
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        die("payload is not a 64-bit ELF")
    phoff = struct.unpack_from("<Q", elf, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p = phoff + i * phentsize
        p_type = struct.unpack_from("<I", elf, p)[0]
        if p_type != 4:  # PT_NOTE
            continue
        offset, _, _, filesz = struct.unpack_from("<QQQQ", elf, p + 8)
        q, end = offset, offset + filesz
        while q + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, q)
            name = elf[q + 12:q + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            q += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


def main():
    if len(sys.argv) != 3:
        die("usage: extract-vmlinux.py VMLINUZ OUT")
    with open(sys.argv[1], "rb") as f:
        img = f.read()
    elf = decompress(payload_of(img))
    if not has_pvh_note(elf):
        die("vmlinux has no PVH entry note (CONFIG_PVH not set?)")
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(elf)
    os.replace(tmp, sys.argv[2])


if __name__ == "__main__":
    main()
