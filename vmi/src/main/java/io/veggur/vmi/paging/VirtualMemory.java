package io.veggur.vmi.paging;

import io.veggur.protocol.Request.PhysicalRange;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One guest address space: reads at virtual addresses, through a {@link PageTableWalker} and a root (a CR3 value).
 * Multi-byte values are little-endian.
 *
 * <p>A read within one 4 KiB page is one translation and one physical read. A read that crosses pages translates
 * every page first, so an unmapped page anywhere fails the read before any byte is copied; then it fetches the pieces
 * (physically adjacent ones merged) with one {@link PhysicalMemory#readBatch}, one round trip on a remote memory.
 * The fixed-size reads rely on the walker's invariant that a translated 4 KiB page is wholly RAM: a value that fits
 * in the first 4088 bytes of its page is fetched with one 8-byte physical read and no allocation.
 *
 * <p>Thread-safe: immutable; it sees whatever the walker's cache holds for its root.
 */
public final class VirtualMemory {
    private static final int PAGE = 4096;
    private static final int STRING_CHUNK = 256;

    private final PageTableWalker walker;
    private final PhysicalMemory memory;
    private final long root;

    public VirtualMemory(PageTableWalker walker, long root) {
        this.walker = walker;
        this.memory = walker.memory();
        this.root = root;
    }

    /** The CR3 value this view translates with, as given. */
    public long root() {
        return root;
    }

    /** Fills {@code dst[offset, offset+length)} from {@code virtualAddress}; fails if any page touched is unmapped. */
    public void read(long virtualAddress, byte[] dst, int offset, int length) throws IOException {
        Objects.checkFromIndexSize(offset, length, dst.length);
        if (length <= PAGE - pageOffset(virtualAddress)) {
            if (length > 0) {
                memory.read(walker.translate(root, virtualAddress), dst, offset, length);
            }
            return;
        }
        List<PhysicalRange> ranges = new ArrayList<>();
        long address = virtualAddress;
        for (int done = 0; done < length; ) {
            int piece = Math.min(length - done, PAGE - pageOffset(address));
            long physical = walker.translate(root, address);
            PhysicalRange last = ranges.isEmpty() ? null : ranges.getLast();
            if (last != null && last.address() + last.length() == physical) {
                ranges.set(ranges.size() - 1, new PhysicalRange(last.address(), last.length() + piece));
            } else {
                ranges.add(new PhysicalRange(physical, piece));
            }
            address += piece;
            done += piece;
        }
        if (offset == 0) {
            memory.readBatch(ranges, dst);
        } else {
            byte[] bytes = new byte[length];
            memory.readBatch(ranges, bytes);
            System.arraycopy(bytes, 0, dst, offset, length);
        }
    }

    public byte[] read(long virtualAddress, int length) throws IOException {
        byte[] bytes = new byte[length];
        read(virtualAddress, bytes, 0, length);
        return bytes;
    }

    public long readLong(long virtualAddress) throws IOException {
        return fits(virtualAddress) ? memory.readLong(walker.translate(root, virtualAddress))
                : readNearPageEnd(virtualAddress, Long.BYTES);
    }

    public int readInt(long virtualAddress) throws IOException {
        return (int) (fits(virtualAddress) ? memory.readLong(walker.translate(root, virtualAddress))
                : readNearPageEnd(virtualAddress, Integer.BYTES));
    }

    public short readShort(long virtualAddress) throws IOException {
        return (short) (fits(virtualAddress) ? memory.readLong(walker.translate(root, virtualAddress))
                : readNearPageEnd(virtualAddress, Short.BYTES));
    }

    public byte readByte(long virtualAddress) throws IOException {
        return (byte) (fits(virtualAddress) ? memory.readLong(walker.translate(root, virtualAddress))
                : readNearPageEnd(virtualAddress, Byte.BYTES));
    }

    /**
     * The NUL-terminated string at {@code virtualAddress}, at most {@code maxLength} bytes (without a NUL within them
     * the first maxLength bytes are returned). Decoded as UTF-8, malformed bytes becoming U+FFFD: Linux names are
     * bytes that are almost always UTF-8; use {@link #read} for the exact bytes. Reads in chunks that never cross a
     * page, so the bytes after the NUL are never read and need not be mapped.
     */
    public String readCString(long virtualAddress, int maxLength) throws IOException {
        if (maxLength < 0) {
            throw new IllegalArgumentException("negative maxLength " + maxLength);
        }
        byte[] buffer = new byte[Math.min(maxLength, STRING_CHUNK)];
        int length = 0;
        long address = virtualAddress;
        while (length < maxLength) {
            int piece = Math.min(Math.min(STRING_CHUNK, maxLength - length), PAGE - pageOffset(address));
            if (length + piece > buffer.length) {
                buffer = Arrays.copyOf(buffer, (int) Math.min(maxLength, Math.max(2L * buffer.length, length + piece)));
            }
            read(address, buffer, length, piece);
            for (int i = length; i < length + piece; i++) {
                if (buffer[i] == 0) {
                    return new String(buffer, 0, i, StandardCharsets.UTF_8);
                }
            }
            length += piece;
            address += piece;
        }
        return new String(buffer, 0, length, StandardCharsets.UTF_8);
    }

    private static int pageOffset(long virtualAddress) {
        return (int) virtualAddress & (PAGE - 1);
    }

    /** True when 8 bytes from the address stay in its page, so one physical readLong serves any value up to 8 bytes. */
    private static boolean fits(long virtualAddress) {
        return pageOffset(virtualAddress) <= PAGE - Long.BYTES;
    }

    private long readNearPageEnd(long virtualAddress, int size) throws IOException {
        byte[] bytes = read(virtualAddress, size);
        long value = 0;
        for (int i = size - 1; i >= 0; i--) {
            value = value << 8 | (bytes[i] & 0xFF);
        }
        return value;
    }
}
