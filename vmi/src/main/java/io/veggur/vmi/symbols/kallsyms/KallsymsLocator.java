package io.veggur.vmi.symbols.kallsyms;

import java.util.ArrayList;
import java.util.List;

/**
 * Finds the kallsyms arrays around a token table, from their structure alone:
 * <ul>
 *   <li>{@code kallsyms_markers} (u64 until 4.19, u32 after) end right before the token table, or before
 *       {@code kallsyms_seqs_of_names} in 6.2/6.3 (and Debian's 6.1). markers[k] is the offset in
 *       {@code kallsyms_names} of symbol 256k: markers[0] = 0 and they grow by 2..2+{@value #MAX_ENTRY_TOKENS} bytes
 *       per symbol.</li>
 *   <li>{@code kallsyms_names} ends right before the markers; {@code kallsyms_num_syms} (a u32 plus zero padding,
 *       or a u64) sits in the 8 bytes right before the names. One entry per symbol: a length (one byte; since 6.1 two
 *       bytes, ULEB128, when it is 128 or more) and that many token numbers. The candidate is accepted only if walking
 *       num_syms entries from there hits every marker and ends, modulo padding, at the markers.</li>
 *   <li>{@code kallsyms_offsets} (s32 per symbol) and {@code kallsyms_relative_base} (u64, relocated at boot, so it
 *       holds the runtime address) come before num_syms until 6.3 and right after the token index from 6.4.</li>
 * </ul>
 * An address is {@code relative_base + (u32) offset}, except with CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP from
 * 4.6 until 6.15 removed it in commit 01157ddc58dc): there a non-negative offset is the address itself (per-CPU
 * symbols, small offsets into the per-CPU area) and a negative one means {@code relative_base - 1 - offset}. The
 * encoding is recognized by its sign pattern and checked by the addresses coming out sorted, as scripts/kallsyms.c
 * sorts symbols by address.
 */
final class KallsymsLocator {
    static final int MAX_SYMBOLS = 1 << 21;
    /** KSYM_NAME_LEN is 512 since 6.1 (128 before); a name has at most that many tokens. */
    static final int MAX_ENTRY_TOKENS = 1024;
    /** Bound on kallsyms_names (compressed); a Debian kernel's take 1 to 2 MB. */
    static final long MAX_NAMES_BYTES = 64L << 20;
    static final long KERNEL_IMAGE_START = 0xffff_ffff_8000_0000L;
    /** Kernel image mapping end (MODULES_VADDR): KERNEL_IMAGE_SIZE is at most 1 GiB. */
    static final long KERNEL_IMAGE_END = 0xffff_ffff_c000_0000L;

    private static final int MAX_MARKERS = MAX_SYMBOLS / 256;
    private static final int MAX_ENTRY_BYTES = 2 + MAX_ENTRY_TOKENS;
    private static final long MIN_BLOCK_BYTES = 256 * 2;
    private static final long MAX_BLOCK_BYTES = 256L * MAX_ENTRY_BYTES;
    private static final int SEQ_BYTES = 3;

    /** How far a candidate got, for the error message when none is complete. */
    private enum Stage { DIGITS, TOKEN_TABLE, MARKERS, NAMES }

    private record Markers(long address, int width, long[] values) {
    }

    private record Names(PhysicalWindow window, long address, int count, boolean bigLengths) {
    }

    private final WindowReader reader;
    private Stage furthest = Stage.DIGITS;
    private long furthestTokenTable = -1;

    KallsymsLocator(WindowReader reader) {
        this.reader = reader;
    }

    /** The tables whose token strings 0x30..0x39 are the digit run at {@code digits}, or null. */
    KallsymsTables locate(long digits) throws KallsymsException {
        PhysicalWindow around = reader.read(digits, digits - TokenTable.WINDOW_BEFORE,
                digits + TokenTable.WINDOW_AFTER);
        TokenTable tokens = TokenTable.parse(around, digits);
        if (tokens == null) {
            return null;
        }
        reached(Stage.TOKEN_TABLE, tokens);
        long table = tokens.address();
        PhysicalWindow before = reader.read(table, table - (long) MAX_MARKERS * 8 - 16, table);
        for (Markers markers : markersEndingAt(before, table)) {
            List<Layout> layouts = markers.width() == 8 ? List.of(Layout.U64_MARKERS)
                    : List.of(Layout.OFFSETS_AFTER_TOKEN_INDEX, Layout.U32_MARKERS);
            KallsymsTables found = fromMarkers(tokens, markers, layouts, -1);
            if (found != null) {
                return found;
            }
        }
        return behindSeqsOfNames(tokens);
    }

    /** Describes the most complete candidate seen so far. */
    String furthestFailure() {
        String where = " (token table at guest-physical 0x%x)".formatted(furthestTokenTable);
        return switch (furthest) {
            case DIGITS -> "no digit run \"0\\0\"..\"9\\0\" had a kallsyms_token_index after it";
            case TOKEN_TABLE -> "no kallsyms_markers before the token table" + where;
            case MARKERS -> "no kallsyms_num_syms/kallsyms_names matching the markers" + where;
            case NAMES -> "no sorted kallsyms_offsets with a kernel-image kallsyms_relative_base" + where;
        };
    }

    private void reached(Stage stage, TokenTable tokens) {
        if (stage.compareTo(furthest) > 0) {
            furthest = stage;
            furthestTokenTable = tokens.address();
        }
    }

    /** Marker arrays ending at {@code end}: u64 ones (up to 4.19), and u32 ones with or without 4 bytes of padding. */
    private static List<Markers> markersEndingAt(PhysicalWindow window, long end) {
        List<Markers> found = new ArrayList<>(3);
        for (Markers m : new Markers[] {walkBack(window, end, 8), walkBack(window, end, 4),
                window.contains(end - 4, 4) && window.u32(end - 4) == 0 ? walkBack(window, end - 4, 4) : null}) {
            if (m != null) {
                found.add(m);
            }
        }
        return found;
    }

    /** The marker array ending at {@code end}, read backwards down to its leading 0, or null. */
    private static Markers walkBack(PhysicalWindow window, long end, int width) {
        long position = end;
        long previous = -1;
        int count = 0;
        while (true) {
            position -= width;
            if (++count > MAX_MARKERS || !window.contains(position, width)) {
                return null;
            }
            long value = width == 8 ? window.u64(position) : window.u32(position);
            if (value < 0 || value > MAX_NAMES_BYTES
                    || previous >= 0 && (previous - value < MIN_BLOCK_BYTES || previous - value > MAX_BLOCK_BYTES)) {
                return null;
            }
            if (value == 0) {
                break;
            }
            previous = value;
        }
        long[] values = new long[count];
        for (int i = 0; i < count; i++) {
            long at = position + (long) i * width;
            values[i] = width == 8 ? window.u64(at) : window.u32(at);
        }
        return new Markers(position, width, values);
    }

    /**
     * 6.2/6.3: kallsyms_seqs_of_names (3 bytes per symbol) lies between the markers and the token table, so the
     * markers end where 3*num_syms bytes, 8-aligned, end at the token table. Tries every such end, nearest first.
     */
    private KallsymsTables behindSeqsOfNames(TokenTable tokens) throws KallsymsException {
        long table = tokens.address();
        long farthest = table - (long) SEQ_BYTES * MAX_SYMBOLS - (long) MAX_MARKERS * 4 - 16;
        PhysicalWindow window = reader.read(table, farthest, table);
        for (long end = (table - SEQ_BYTES) & -4L; end - 4 >= window.start; end -= 4) {
            long seqs = (end + 7) & -8L;
            for (long count = Math.max(1, (table - seqs - 5) / SEQ_BYTES); count * SEQ_BYTES <= table - seqs; count++) {
                if (((seqs + count * SEQ_BYTES + 7) & -8L) != table || count > MAX_SYMBOLS) {
                    continue;
                }
                long start = end - 4 * ((count + 255) / 256);
                if (!window.contains(start, end - start) || window.u32(start) != 0
                        || count > 256 && window.u32(end - 4) == 0) {
                    continue;
                }
                Markers markers = walkBack(window, end, 4);
                if (markers != null && markers.address() == start) {
                    KallsymsTables found = fromMarkers(tokens, markers, List.of(Layout.SEQS_BEFORE_TOKEN_TABLE), count);
                    if (found != null) {
                        return found;
                    }
                }
            }
        }
        return null;
    }

    private KallsymsTables fromMarkers(TokenTable tokens, Markers markers, List<Layout> layouts, long expectedCount)
            throws KallsymsException {
        reached(Stage.MARKERS, tokens);
        Names names = findNames(markers);
        if (names == null || expectedCount >= 0 && names.count() != expectedCount) {
            return null;
        }
        reached(Stage.NAMES, tokens);
        for (Layout layout : layouts) {
            KallsymsTables found = withAddresses(layout, tokens, markers, names);
            if (found != null) {
                return found;
            }
        }
        return null;
    }

    /**
     * num_syms and the names before the markers: tries every 8-aligned start whose preceding u64 is a count that fits
     * the number of markers, and accepts the first whose entries walk onto every marker.
     */
    private Names findNames(Markers markers) throws KallsymsException {
        long[] values = markers.values();
        long last = values[values.length - 1];
        long minCount = (values.length - 1) * 256L + 1;
        long maxCount = values.length * 256L;
        long lowest = markers.address() - last - MAX_BLOCK_BYTES;
        PhysicalWindow window = reader.read(markers.address(), lowest - 8, markers.address());
        for (long start = (markers.address() - last - 2) & -8L; start >= lowest && window.contains(start - 8, 8);
             start -= 8) {
            long count = window.u64(start - 8);
            if (count < minCount || count > maxCount) {
                continue;
            }
            for (boolean bigLengths : new boolean[] {true, false}) {
                if (entriesEndAtMarkers(window, start, (int) count, markers, bigLengths)) {
                    return new Names(window, start, (int) count, bigLengths);
                }
            }
        }
        return null;
    }

    /**
     * Whether {@code count} entries from {@code start} fit the markers: each block of 256 entries from its marker ends
     * at the next marker, and the last block, zero-padded to 8 bytes, at the markers. The last block is checked first:
     * it fails after at most 256 entries for every start but the right one, so that hostile memory with many
     * plausible starts costs no more than a few full walks.
     */
    private static boolean entriesEndAtMarkers(PhysicalWindow window, long start, int count, Markers markers,
                                               boolean bigLengths) {
        long[] values = markers.values();
        int blocks = values.length;
        long end = skipEntries(window, start + values[blocks - 1], count - (blocks - 1) * 256, markers.address(),
                bigLengths);
        if (end < 0 || markers.address() - end >= 8) {
            return false;
        }
        for (long padding = end; padding < markers.address(); padding++) {
            if (window.u8(padding) != 0) {
                return false;
            }
        }
        for (int block = 0; block + 1 < blocks; block++) {
            long next = skipEntries(window, start + values[block], 256, markers.address(), bigLengths);
            if (next != start + values[block + 1]) {
                return false;
            }
        }
        return true;
    }

    /** Address past {@code entries} entries from {@code position}; -1 if one is malformed or passes {@code limit}. */
    private static long skipEntries(PhysicalWindow window, long position, int entries, long limit, boolean bigLengths) {
        for (int i = 0; i < entries && position >= 0; i++) {
            position = nextEntry(window, position, bigLengths);
            if (position > limit) {
                return -1;
            }
        }
        return position;
    }

    /** Address of the entry after the one at {@code position}, or -1 if this one is malformed or leaves the window. */
    static long nextEntry(PhysicalWindow window, long position, boolean bigLengths) {
        if (!window.contains(position, 2)) {
            return -1;
        }
        int length = window.u8(position);
        long data = position + headerBytes(window, position, bigLengths);
        if (data - position == 2) {
            length = (length & 0x7f) | window.u8(position + 1) << 7;
        }
        if (length == 0 || length > MAX_ENTRY_TOKENS || !window.contains(data, length)) {
            return -1;
        }
        return data + length;
    }

    /** Bytes of an entry's length: 1, or 2 for a ULEB128 length of 128 or more. Needs 2 bytes in the window. */
    static int headerBytes(PhysicalWindow window, long position, boolean bigLengths) {
        return bigLengths && window.u8(position) >= 0x80 ? 2 : 1;
    }

    private KallsymsTables withAddresses(Layout layout, TokenTable tokens, Markers markers, Names names)
            throws KallsymsException {
        int count = names.count();
        long offsets;
        long base;
        if (layout.offsetsFirst()) {
            base = names.address() - 16;
            offsets = (base - 4L * count) & -8L;
        } else {
            offsets = tokens.indexAddress() + TokenTable.INDEX_BYTES;
            base = (offsets + 4L * count + 7) & -8L;
        }
        PhysicalWindow window = reader.read(tokens.address(), offsets, base + 8);
        if (!window.contains(offsets, base + 8 - offsets)) {
            return null;
        }
        long relativeBase = window.u64(base);
        if (!inKernelImage(relativeBase)) {
            return null;
        }
        boolean absolutePercpu = false;
        for (int i = 0; i < count && !absolutePercpu; i++) {
            absolutePercpu = window.s32(offsets + 4L * i) < 0;
        }
        long[] addresses = new long[count];
        for (int i = 0; i < count; i++) {
            int offset = window.s32(offsets + 4L * i);
            long address = !absolutePercpu ? relativeBase + (offset & 0xffff_ffffL)
                    : offset >= 0 ? offset : relativeBase - 1 - offset;
            boolean percpu = absolutePercpu && offset >= 0;
            if (!percpu && !inKernelImage(address) || i > 0 && Long.compareUnsigned(address, addresses[i - 1]) < 0) {
                return null;
            }
            addresses[i] = address;
        }
        return new KallsymsTables(layout, tokens, markers.address(), names.window(), names.address(), count,
                names.bigLengths(), offsets, relativeBase, absolutePercpu, addresses);
    }

    static boolean inKernelImage(long address) {
        return Long.compareUnsigned(address, KERNEL_IMAGE_START) >= 0
                && Long.compareUnsigned(address, KERNEL_IMAGE_END) < 0;
    }
}
