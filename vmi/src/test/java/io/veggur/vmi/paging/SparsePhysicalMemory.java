package io.veggur.vmi.paging;

import io.veggur.protocol.MemoryMap;
import io.veggur.vmi.memory.OutOfRangeException;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Guest RAM for tests: any memory map, however large, backed by 4 KiB byte arrays allocated on first write (unwritten
 * RAM reads as zeros). Reads outside the map fail with {@link OutOfRangeException} like the real memories. Counts
 * physical reads so tests can tell a cache hit from a walk. Writes are for setting up; concurrent readers may see a
 * write half-done, as with real guest RAM.
 */
final class SparsePhysicalMemory implements PhysicalMemory {
    private static final int PAGE = 4096;

    private final MemoryMap memoryMap;
    private final Map<Long, byte[]> pages = new ConcurrentHashMap<>();
    private final AtomicLong reads = new AtomicLong();

    SparsePhysicalMemory(MemoryMap memoryMap) {
        this.memoryMap = memoryMap;
    }

    @Override
    public MemoryMap memoryMap() {
        return memoryMap;
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) throws IOException {
        if (memoryMap.regionOf(address, length) == null) {
            throw new OutOfRangeException(address, length);
        }
        reads.incrementAndGet();
        for (int done = 0; done < length; ) {
            long at = address + done;
            int inPage = (int) (at & (PAGE - 1));
            int piece = Math.min(length - done, PAGE - inPage);
            byte[] page = pages.get(at - inPage);
            if (page == null) {
                Arrays.fill(dst, offset + done, offset + done + piece, (byte) 0);
            } else {
                System.arraycopy(page, inPage, dst, offset + done, piece);
            }
            done += piece;
        }
    }

    void write(long address, byte[] bytes) {
        if (memoryMap.regionOf(address, bytes.length) == null) {
            throw new IllegalArgumentException("test wrote outside RAM at 0x%x".formatted(address));
        }
        for (int i = 0; i < bytes.length; i++) {
            long at = address + i;
            pages.computeIfAbsent(at & -PAGE, page -> new byte[PAGE])[(int) (at & (PAGE - 1))] = bytes[i];
        }
    }

    void writeLong(long address, long value) {
        byte[] bytes = new byte[8];
        for (int i = 0; i < 8; i++) {
            bytes[i] = (byte) (value >>> (8 * i));
        }
        write(address, bytes);
    }

    long reads() {
        return reads.get();
    }

    @Override
    public void close() {
    }
}
