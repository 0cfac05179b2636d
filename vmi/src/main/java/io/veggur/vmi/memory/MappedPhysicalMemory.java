package io.veggur.vmi.memory;

import io.veggur.protocol.MemoryMap;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
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

    private static final long PAGE = 4096;
    private static final MethodHandle MINCORE = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("mincore").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

    private final MemoryMap memoryMap;
    private final Arena arena;
    private final MemorySegment backing;
    private final boolean sparseBacking;

    private MappedPhysicalMemory(MemoryMap memoryMap, FileChannel channel, boolean sparseBacking) throws IOException {
        this.memoryMap = memoryMap;
        this.sparseBacking = sparseBacking;
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

    /**
     * Maps a granted descriptor; the descriptor itself is closed once mapped (the mapping outlives it). The backing is
     * the VM's RAM file on tmpfs (see docs/protocol.md), where a page not resident was never written.
     */
    public static MappedPhysicalMemory of(FileDescriptor fd, MemoryMap memoryMap) throws IOException {
        try (FileInputStream stream = new FileInputStream(fd); FileChannel channel = stream.getChannel()) {
            return new MappedPhysicalMemory(memoryMap, channel, true);
        }
    }

    /** Maps an image file; residency in the page cache says nothing about its contents, so nothing is skipped. */
    public static MappedPhysicalMemory of(Path file, MemoryMap memoryMap) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            return new MappedPhysicalMemory(memoryMap, channel, false);
        }
    }

    /** On the tmpfs RAM backing, pages the guest never touched are not resident: mincore(2) says which. */
    @Override
    public boolean mayContainData(long address, long length) {
        long offset = memoryMap.backingOffset(address, length);
        if (!sparseBacking || offset < 0 || length <= 0) {
            return true;
        }
        long start = offset & -PAGE;
        long span = ((offset + length + PAGE - 1) & -PAGE) - start;
        try (Arena scratch = Arena.ofConfined()) {
            MemorySegment residency = scratch.allocate(span / PAGE);
            int result = (int) MINCORE.invokeExact(backing.asSlice(start, span), span, residency);
            if (result != 0) {
                return true;
            }
            for (long i = 0; i < span / PAGE; i++) {
                if ((residency.get(ValueLayout.JAVA_BYTE, i) & 1) != 0) {
                    return true;
                }
            }
            return false;
        } catch (Throwable e) {
            return true;
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
