package io.veggur.vmi.symbols.kallsyms;

import io.veggur.protocol.MemoryMap;
import io.veggur.vmi.memory.OutOfRangeException;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;

/** Guest RAM for tests: a byte array laid out as the memory map's backing. Counts the bytes read. */
class ByteArrayPhysicalMemory implements PhysicalMemory {
    private final MemoryMap memoryMap;
    final byte[] backing;
    long bytesRead;

    ByteArrayPhysicalMemory(MemoryMap memoryMap, byte[] backing) {
        if (backing.length < memoryMap.backingSize()) {
            throw new IllegalArgumentException("backing too small for " + memoryMap);
        }
        this.memoryMap = memoryMap;
        this.backing = backing;
    }

    @Override
    public MemoryMap memoryMap() {
        return memoryMap;
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) throws IOException {
        long at = memoryMap.backingOffset(address, length);
        if (at < 0) {
            throw new OutOfRangeException(address, length);
        }
        bytesRead += length;
        System.arraycopy(backing, (int) at, dst, offset, length);
    }

    @Override
    public void close() {
    }
}
