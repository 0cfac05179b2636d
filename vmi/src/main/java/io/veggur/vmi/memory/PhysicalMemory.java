package io.veggur.vmi.memory;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.Request.PhysicalRange;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Guest-physical memory, wherever it comes from (a mapped descriptor, a remote socket, an image file). Reads are of
 * RAM only: a range that is not entirely inside one {@link MemoryMap} region fails with an {@link IOException}
 * rather than returning made-up bytes.
 */
public interface PhysicalMemory extends AutoCloseable {
    MemoryMap memoryMap();

    /** Fills {@code dst[offset, offset+length)} from guest-physical {@code address}. */
    void read(long address, byte[] dst, int offset, int length) throws IOException;

    /**
     * Reads several ranges into {@code dst} back to back. Remote implementations do this in one round trip, so callers
     * should batch what they know they need.
     */
    default void readBatch(List<PhysicalRange> ranges, byte[] dst) throws IOException {
        int position = 0;
        for (PhysicalRange range : ranges) {
            read(range.address(), dst, position, range.length());
            position += range.length();
        }
    }

    /**
     * False only when {@code [address, address+length)} certainly holds nothing but zeros: pages of a sparse RAM
     * backing the guest never touched. Whole-RAM scans skip such ranges, which would otherwise make the host allocate
     * zero pages for all of a large guest's untouched memory. True when unknown.
     */
    default boolean mayContainData(long address, long length) {
        return true;
    }

    /** Drops whatever this memory caches, so the next reads see the guest as it is now. Nothing, by default. */
    default void invalidate() {
    }

    default byte[] read(long address, int length) throws IOException {
        byte[] bytes = new byte[length];
        read(address, bytes, 0, length);
        return bytes;
    }

    default long readLong(long address) throws IOException {
        return ByteBuffer.wrap(read(address, 8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Override
    void close() throws IOException;
}
