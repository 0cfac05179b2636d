package io.veggur.vmi.paging;

import java.util.concurrent.locks.StampedLock;

/**
 * The walker's TLB: three direct-mapped tables, one per page size (1 GiB, 2 MiB, 4 KiB), of {@code slots} entries
 * each, mapping (root table, virtual page) to the walker's packed translation. A lookup probes the one slot per page
 * size that could hold the address, largest size first (the kernel's direct map uses large pages); an insert
 * overwrites its slot. So the cache holds at most 3 x slots entries and allocates nothing after construction. The slot
 * index mixes the root into the page number, so different address spaces' copies of the same user page do not evict
 * each other.
 *
 * <p>An entry is three consecutive longs of one array, so a probe touches one cache line: the root table; the tag,
 * which is the virtual page base with the generation in its low 12 bits (0 = empty); and the packed translation
 * (never 0). {@link #invalidate()} moves to the next generation, which retires every entry in O(1); the tags are wiped
 * only when the generation wraps, once per 4095 invalidations, so no retired entry can come back.
 * {@link #invalidate(long)} wipes one root's entries.
 *
 * <p>Concurrency: one {@link StampedLock}. Inserts and invalidations write under the write lock. Lookups read
 * optimistically (no lock, no shared write) and retry under the read lock when a writer intervened, so a lookup never
 * returns a torn entry. A walk that overlaps an invalidation must not insert what it read before it: the walker takes
 * {@link #epoch()} before walking, {@link #insert} drops the entry if any invalidation happened since.
 */
final class TranslationCache {
    static final int DEFAULT_SLOTS = 1024;

    private static final int PAGE_SIZES = 3;
    private static final int ROOT = 0;
    private static final int TAG = 1;
    private static final int VALUE = 2;
    private static final int ENTRY_LONGS = 3;
    private static final int GENERATIONS = 4095;
    private static final long GENERATION_MASK = 0xFFF;
    private static final long ROOT_MIX = 0x9E3779B97F4A7C15L;

    private final int slots;
    private final long[] entries;
    private final StampedLock lock = new StampedLock();
    private long generation = 1;
    private volatile long epoch;

    TranslationCache(int slots) {
        if (slots < 1 || Integer.bitCount(slots) != 1 || slots > 1 << 20) {
            throw new IllegalArgumentException("slots per page size must be a power of two in 1..2^20, got " + slots);
        }
        this.slots = slots;
        this.entries = new long[ENTRY_LONGS * PAGE_SIZES * slots];
    }

    /** The packed translation cached for {@code virtualAddress} under {@code root}, or 0. */
    long lookup(long root, long virtualAddress) {
        long stamp = lock.tryOptimisticRead();
        long value = probe(root, virtualAddress);
        if (lock.validate(stamp)) {
            return value;
        }
        stamp = lock.readLock();
        try {
            return probe(root, virtualAddress);
        } finally {
            lock.unlockRead(stamp);
        }
    }

    private long probe(long root, long virtualAddress) {
        long mix = mix(root);
        for (int level = PAGE_SIZES; level >= 1; level--) {
            int shift = PageTableWalker.pageShift(level);
            int entry = entry(level, mix, virtualAddress >>> shift);
            long tag = (virtualAddress & (-1L << shift)) | generation;
            if (entries[entry + TAG] == tag && entries[entry + ROOT] == root) {
                return entries[entry + VALUE];
            }
        }
        return 0;
    }

    /** Count of invalidations so far; pass it to {@link #insert} from before the walk that produced the entry. */
    long epoch() {
        return epoch;
    }

    /** Caches a translation of a page at {@code level} (1..3), unless an invalidation happened since {@code epoch}. */
    void insert(long root, long virtualAddress, int level, long value, long epoch) {
        int shift = PageTableWalker.pageShift(level);
        int entry = entry(level, mix(root), virtualAddress >>> shift);
        long stamp = lock.writeLock();
        try {
            if (epoch == this.epoch) {
                entries[entry + ROOT] = root;
                entries[entry + TAG] = (virtualAddress & (-1L << shift)) | generation;
                entries[entry + VALUE] = value;
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    void invalidate() {
        long stamp = lock.writeLock();
        try {
            epoch++;
            generation = generation % GENERATIONS + 1;
            if (generation == 1) {
                for (int entry = 0; entry < entries.length; entry += ENTRY_LONGS) {
                    entries[entry + TAG] = 0;
                }
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    void invalidate(long root) {
        long stamp = lock.writeLock();
        try {
            epoch++;
            for (int entry = 0; entry < entries.length; entry += ENTRY_LONGS) {
                if (entries[entry + ROOT] == root) {
                    entries[entry + TAG] = 0;
                }
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** Number of live entries; at most {@link #capacity()}. */
    int size() {
        long stamp = lock.readLock();
        try {
            int live = 0;
            for (int entry = 0; entry < entries.length; entry += ENTRY_LONGS) {
                if ((entries[entry + TAG] & GENERATION_MASK) == generation) {
                    live++;
                }
            }
            return live;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    int capacity() {
        return PAGE_SIZES * slots;
    }

    private static long mix(long root) {
        return (root >>> 12) * ROOT_MIX >>> 40;
    }

    /** Index in {@link #entries} of the slot for a page number at {@code level}. */
    private int entry(int level, long rootMix, long pageNumber) {
        return ENTRY_LONGS * ((level - 1) * slots + ((int) (pageNumber ^ rootMix) & (slots - 1)));
    }
}
