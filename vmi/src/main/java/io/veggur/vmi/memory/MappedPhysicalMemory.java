package io.veggur.vmi.memory;

import io.veggur.protocol.MemoryMap;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Guest RAM mapped read-only into this process: from the descriptor the server grants, or from a raw image file.
 * Reads are plain memory copies with no system call. The mapping is shared with the running guest, so a read may
 * observe a concurrent guest write half-done, exactly as the vCPU's own other CPUs would.
 */
public final class MappedPhysicalMemory implements PhysicalMemory {
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemoryMap memoryMap;
    private final Arena arena;
    private final MemorySegment backing;

    private MappedPhysicalMemory(MemoryMap memoryMap, FileChannel channel) throws IOException {
        this.memoryMap = memoryMap;
        long size = memoryMap.backingSize();
        if (channel.size() < size) {
            throw new IOException("memory backing holds " + channel.size() + " bytes but the memory map needs " + size);
        }
        this.arena = Arena.ofShared();
        try {
            this.backing = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Maps a granted descriptor; the descriptor itself is closed once mapped (the mapping outlives it). */
    public static MappedPhysicalMemory of(FileDescriptor fd, MemoryMap memoryMap) throws IOException {
        try (FileInputStream stream = new FileInputStream(fd); FileChannel channel = stream.getChannel()) {
            return new MappedPhysicalMemory(memoryMap, channel);
        }
    }

    public static MappedPhysicalMemory of(Path file, MemoryMap memoryMap) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            return new MappedPhysicalMemory(memoryMap, channel);
        }
    }

    @Override
    public MemoryMap memoryMap() {
        return memoryMap;
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) throws IOException {
        MemorySegment.copy(backing, ValueLayout.JAVA_BYTE, offsetOf(address, length), dst, offset, length);
    }

    @Override
    public long readLong(long address) throws IOException {
        return backing.get(LONG_LE, offsetOf(address, 8));
    }

    private long offsetOf(long address, long length) throws IOException {
        long offset = memoryMap.backingOffset(address, length);
        if (offset < 0) {
            throw new OutOfRangeException(address, length);
        }
        return offset;
    }

    @Override
    public void close() {
        arena.close();
    }
}
