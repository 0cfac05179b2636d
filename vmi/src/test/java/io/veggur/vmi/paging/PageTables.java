package io.veggur.vmi.paging;

import java.io.IOException;

/**
 * Builds x86-64 page tables in a {@link SparsePhysicalMemory} for tests. Tables come from a bump allocator starting
 * at a given guest-physical address; {@link #map} creates the missing intermediate tables (present, writable, user)
 * and writes the leaf entry, with PS for 2 MiB and 1 GiB pages.
 */
final class PageTables {
    static final long PRESENT = 1L;
    static final long WRITABLE = 1L << 1;
    static final long USER = 1L << 2;
    static final long PAGE_SIZE = 1L << 7;
    static final long NO_EXECUTE = 1L << 63;
    static final long TABLE_FLAGS = PRESENT | WRITABLE | USER;
    private static final long ADDRESS = 0x000F_FFFF_FFFF_F000L;

    private final SparsePhysicalMemory memory;
    private final PagingMode mode;
    private final long root;
    private long nextTable;

    PageTables(SparsePhysicalMemory memory, PagingMode mode, long tableArea) {
        this.memory = memory;
        this.mode = mode;
        this.nextTable = tableArea;
        this.root = allocateTable();
    }

    /** Guest-physical address of the top table, which is also a CR3 value without flags. */
    long root() {
        return root;
    }

    long allocateTable() {
        long table = nextTable;
        nextTable += 4096;
        memory.write(table, new byte[4096]);
        return table;
    }

    PageTables map(long virtualAddress, long physicalAddress, long pageSize) {
        return map(virtualAddress, physicalAddress, pageSize, PRESENT | WRITABLE | USER);
    }

    /** Maps the page of {@code pageSize} holding virtualAddress to physicalAddress with {@code leafFlags}. */
    PageTables map(long virtualAddress, long physicalAddress, long pageSize, long leafFlags) {
        int leafLevel = pageSize == 4096 ? 1 : pageSize == 1L << 21 ? 2 : 3;
        long table = root;
        for (int level = mode.levels(); level > leafLevel; level--) {
            long entryAddress = entryAddress(table, virtualAddress, level);
            long entry = read(entryAddress);
            if ((entry & PRESENT) == 0) {
                entry = allocateTable() | TABLE_FLAGS;
                memory.writeLong(entryAddress, entry);
            }
            table = entry & ADDRESS;
        }
        memory.writeLong(entryAddress(table, virtualAddress, leafLevel),
                physicalAddress | leafFlags | (leafLevel > 1 ? PAGE_SIZE : 0));
        return this;
    }

    /** Guest-physical address of the entry at {@code level} on the walk of virtualAddress; the walk must reach it. */
    long entryAddress(long virtualAddress, int level) {
        long table = root;
        for (int l = mode.levels(); l > level; l--) {
            table = read(entryAddress(table, virtualAddress, l)) & ADDRESS;
        }
        return entryAddress(table, virtualAddress, level);
    }

    long entry(long virtualAddress, int level) {
        return read(entryAddress(virtualAddress, level));
    }

    void setEntry(long virtualAddress, int level, long entry) {
        memory.writeLong(entryAddress(virtualAddress, level), entry);
    }

    private static long entryAddress(long table, long virtualAddress, int level) {
        return table + (((virtualAddress >>> (12 + 9 * (level - 1))) & 0x1FF) << 3);
    }

    private long read(long address) {
        try {
            return memory.readLong(address);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
