package io.veggur.vmi.paging;

import java.util.Arrays;
import java.util.concurrent.locks.StampedLock;

/**
 * The walker's TLB: three direct-mapped tables, one per page size (4 KiB, 2 MiB, 1 GiB), of {@code slots} entries
 * each, mapping (root table, virtual page) to the walker's packed translation. A lookup probes the one slot per page
 * size that could hold the address; an insert overwrites its slot. So the cache holds at most 3 x slots entries and
 * allocates nothing after construction. The slot index mixes the root into the page number, so different address
 * spaces' copies of the same user page do not evict each other.
 *
 * <p>Entry layout: {@code roots[i]} the root table; {@code tags[i]} the virtual page base with the generation in its
 * low 12 bits (0 = empty); {@code values[i]} the packed translation (never 0). {@link #invalidate()} moves to the next
 * generation, which retires every entry in O(1); the tags are wiped only when the generation wraps, once per 4095
 * invalidations, so no retired entry can come back. {@link #invalidate(long)} wipes one root's entries.
 *
 * <p>Concurrency: one {@link StampedLock}. Inserts and invalidations write under the write lock. Lookups read
 * optimistically (no lock, no shared write) and retry under the read lock when a writer intervened, so a lookup never
 * returns a torn entry. A walk that overlaps an invalidation must not insert what it read before it: the walker takes
 * {@link #epoch()} before walking, {@link #insert} drops the entry if any invalidation happened since.
 */
final class TranslationCache {
    static final int DEFAULT_SLOTS = 1024;

    private static final int PAGE_SIZES = 3;
    private static final int GENERATIONS = 4095;
    private static final long GENERATION_MASK = 0xFFF;
    private static final long ROOT_MIX = 0x9E3779B97F4A7C15L;

    private final int slots;
    private final long[] roots;
    private final long[] tags;
    private final long[] values;
    private final StampedLock lock = new StampedLock();
    private int generation = 1;
    private volatile long epoch;

    TranslationCache(int slots) {
        if (slots < 1 || Integer.bitCount(slots) != 1 || slots > 1 << 20) {
            throw new IllegalArgumentException("slots per page size must be a power of two in 1..2^20, got " + slots);
        }
        this.slots = slots;
        this.roots = new long[PAGE_SIZES * slots];
        this.tags = new long[PAGE_SIZES * slots];
        this.values = new long[PAGE_SIZES * slots];
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
        long generation = this.generation;
        for (int level = 1; level <= PAGE_SIZES; level++) {
            int shift = PageTableWalker.pageShift(level);
            int slot = slot(level, root, virtualAddress >>> shift);
            if (tags[slot] == ((virtualAddress & (-1L << shift)) | generation) && roots[slot] == root) {
                return values[slot];
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
        int slot = slot(level, root, virtualAddress >>> shift);
        long stamp = lock.writeLock();
        try {
            if (epoch == this.epoch) {
                roots[slot] = root;
                tags[slot] = (virtualAddress & (-1L << shift)) | generation;
                values[slot] = value;
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
                Arrays.fill(tags, 0);
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    void invalidate(long root) {
        long stamp = lock.writeLock();
        try {
            epoch++;
            for (int i = 0; i < roots.length; i++) {
                if (roots[i] == root) {
                    tags[i] = 0;
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
            for (long tag : tags) {
                if ((tag & GENERATION_MASK) == generation) {
                    live++;
                }
            }
            return live;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    int capacity() {
        return tags.length;
    }

    private int slot(int level, long root, long pageNumber) {
        long mixed = pageNumber ^ ((root >>> 12) * ROOT_MIX >>> 40);
        return (level - 1) * slots + ((int) mixed & (slots - 1));
    }
}
