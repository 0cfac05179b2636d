package io.veggur.vmi.symbols.kallsyms;

/**
 * A copy of the guest-physical range {@code [start, start + bytes.length)} with little-endian accessors. Accessors do
 * not check bounds: callers ask {@link #contains} first, for every range they read, because the bytes are guest data
 * and every offset into them comes from guest data too. (Values are assembled from bytes rather than read through a
 * VarHandle, which is slow until the JIT compiles the caller, and a find runs mostly cold.)
 */
final class PhysicalWindow {
    final long start;
    final byte[] bytes;

    PhysicalWindow(long start, byte[] bytes) {
        this.start = start;
        this.bytes = bytes;
    }

    long end() {
        return start + bytes.length;
    }

    boolean contains(long address, long length) {
        return address >= start && length >= 0 && length <= bytes.length && address - start <= bytes.length - length;
    }

    int u8(long address) {
        return bytes[index(address)] & 0xff;
    }

    int u16(long address) {
        int i = index(address);
        return bytes[i] & 0xff | (bytes[i + 1] & 0xff) << 8;
    }

    int s32(long address) {
        int i = index(address);
        return bytes[i] & 0xff | (bytes[i + 1] & 0xff) << 8 | (bytes[i + 2] & 0xff) << 16 | bytes[i + 3] << 24;
    }

    long u32(long address) {
        return s32(address) & 0xffff_ffffL;
    }

    long u64(long address) {
        return u32(address) | (long) s32(address + 4) << 32;
    }

    int index(long address) {
        return (int) (address - start);
    }
}
