#!/usr/bin/env python3
"""Deflate on squashfs-sized blocks with the system zlib (what mksquashfs and
tar2sqfs link) and, when installed, libdeflate (through ctypes; Debian's
libdeflate0). Companion of deflate-levels.mjs; same input and output format.
    python3 bench/lib/deflate-levels.py FILE [BLOCK_SIZE=131072] [LEVELS=1,3,5,6,7,8,9]
"""
import ctypes
import ctypes.util
import resource
import sys
import zlib


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    if len(sys.argv) < 2:
        sys.exit('usage: deflate-levels.py FILE [BLOCK_SIZE] [LEVELS]')
    bs = int(sys.argv[2]) if len(sys.argv) > 2 else 131072
    levels = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else '1,3,5,6,7,8,9').split(',')]
    data = open(sys.argv[1], 'rb').read()
    blocks = [data[o:o + bs] for o in range(0, len(data), bs)]
    for lvl in levels:
        c0, total = cpu(), 0
        for b in blocks:
            total += min(len(zlib.compress(b, lvl)), len(b))
        print(f'system-zlib {zlib.ZLIB_RUNTIME_VERSION} level {lvl}: {total} bytes, {cpu() - c0:.2f} s CPU', flush=True)
    name = ctypes.util.find_library('deflate')
    if not name:
        print('libdeflate: not installed (apt-get install libdeflate0)')
        return
    lib = ctypes.CDLL(name)
    lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
    lib.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
    lib.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
    lib.libdeflate_zlib_compress.restype = ctypes.c_size_t
    lib.libdeflate_zlib_compress.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                             ctypes.c_void_p, ctypes.c_size_t]
    out = ctypes.create_string_buffer(bs)
    for lvl in levels:
        comp = lib.libdeflate_alloc_compressor(lvl)
        c0, total = cpu(), 0
        for b in blocks:
            n = lib.libdeflate_zlib_compress(comp, b, len(b), out, len(b) - 1)
            total += n if n else len(b)  # 0 = does not shrink: stored raw
        lib.libdeflate_free_compressor(comp)
        print(f'libdeflate ({name}) level {lvl}: {total} bytes, {cpu() - c0:.2f} s CPU', flush=True)


main()
