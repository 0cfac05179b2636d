package io.veggur.vmi.symbols.kallsyms;

import java.util.Arrays;

/**
 * {@code kallsyms_token_table} and {@code kallsyms_token_index}: 256 NUL-terminated strings back to back, and 256 u16
 * offsets of those strings, starting at the first 8-byte boundary after the last string (every kallsyms array is
 * emitted with {@code .balign 8} on 64-bit). So {@code index[0] == 0} and each offset is exactly where the previous
 * string ended. Each byte of a compressed symbol name stands for the string with that number. scripts/kallsyms.c
 * gives each byte value that occurs in some symbol name itself as its string, so "0".."9" sit at 0x30..0x39 and the
 * search looks for that run; the unused values name frequent substrings.
 *
 * @param address      guest-physical address of the table
 * @param indexAddress guest-physical address of the index
 * @param tokens       the 256 strings, without their NULs; printable ASCII only
 */
record TokenTable(long address, long indexAddress, byte[][] tokens) {
    /**
     * Bound on the strings' total size. The u16 index would allow 64 KiB, but the strings are pairs of pairs of
     * symbol characters and take about 1 KiB in real kernels; the bound keeps checking a look-alike cheap.
     */
    static final int MAX_TABLE_BYTES = 16 << 10;
    static final int INDEX_BYTES = 256 * 2;

    /** Bytes around a digit run that hold any token table containing it. */
    static final int WINDOW_BEFORE = MAX_TABLE_BYTES;
    static final int WINDOW_AFTER = MAX_TABLE_BYTES + INDEX_BYTES + 8;

    /**
     * The token table whose strings 0x30..0x39 are the digit run at {@code digits}, or null. Walks forward over the
     * strings 0x30..0xff to find the end of the table, reads the index at the next 8-byte boundary, and accepts only
     * if that index describes exactly the strings found from {@code digits - index[0x30]}.
     */
    static TokenTable parse(PhysicalWindow window, long digits) {
        long end = skipStrings(window, digits, 256 - '0');
        if (end < 0) {
            return null;
        }
        long indexAddress = (end + 7) & -8L;
        if (!window.contains(indexAddress, INDEX_BYTES) || window.u16(indexAddress) != 0) {
            return null;
        }
        long address = digits - window.u16(indexAddress + 2 * '0');
        byte[][] tokens = new byte[256][];
        long position = address;
        for (int i = 0; i < 256; i++) {
            if (window.u16(indexAddress + 2L * i) != position - address) {
                return null;
            }
            long next = skipStrings(window, position, 1);
            if (next < 0) {
                return null;
            }
            int from = window.index(position);
            tokens[i] = Arrays.copyOfRange(window.bytes, from, from + (int) (next - 1 - position));
            position = next;
        }
        return position == end ? new TokenTable(address, indexAddress, tokens) : null;
    }

    /**
     * Address just past {@code count} NUL-terminated printable strings starting at {@code from}, or -1 if a byte is
     * not printable ASCII, the window ends, or the strings run past {@link #MAX_TABLE_BYTES}.
     */
    private static long skipStrings(PhysicalWindow window, long from, int count) {
        long position = from;
        long limit = Math.min(window.end(), from + MAX_TABLE_BYTES);
        for (int left = count; left > 0; position++) {
            if (position < window.start || position >= limit) {
                return -1;
            }
            int b = window.u8(position);
            if (b == 0) {
                left--;
            } else if (b < 0x21 || b > 0x7e) {
                return -1;
            }
        }
        return position;
    }
}
