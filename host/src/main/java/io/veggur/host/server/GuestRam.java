package io.veggur.host.server;

import io.veggur.protocol.MemoryMap;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The guest's RAM backing file, shared with QEMU ({@code memory-backend-file,share=on}). The server maps it
 * read-write for its own reads and policy-gated writes, and keeps a separate read-only descriptor that it hands to
 * local clients: a descriptor opened O_RDONLY cannot be mapped writable, whatever the client does with it.
 */
public final class GuestRam implements AutoCloseable {
    private final MemoryMap memoryMap;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment backing;
    private final FileInputStream readOnly;

    public GuestRam(Path backingFile, MemoryMap memoryMap) throws IOException {
        this.memoryMap = memoryMap;
        try (FileChannel channel = FileChannel.open(backingFile, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            if (channel.size() < memoryMap.backingSize()) {
                throw new IOException("RAM backing " + backingFile + " holds " + channel.size() + " bytes, memory map needs "
                        + memoryMap.backingSize());
            }
            this.backing = channel.map(FileChannel.MapMode.READ_WRITE, 0, memoryMap.backingSize(), arena);
        }
        this.readOnly = new FileInputStream(backingFile.toFile());
    }

    public MemoryMap memoryMap() {
        return memoryMap;
    }

    /** Copies a range already checked with {@link MemoryMap#backingOffset}. */
    void copyOut(long backingOffset, byte[] dst, int dstOffset, int length) {
        MemorySegment.copy(backing, ValueLayout.JAVA_BYTE, backingOffset, dst, dstOffset, length);
    }

    void copyIn(byte[] src, long backingOffset) {
        MemorySegment.copy(src, 0, backing, ValueLayout.JAVA_BYTE, backingOffset, src.length);
    }

    FileDescriptor readOnlyDescriptor() throws IOException {
        return readOnly.getFD();
    }

    long backingSize() {
        return memoryMap.backingSize();
    }

    @Override
    public void close() throws IOException {
        readOnly.close();
        arena.close();
    }
}
