package io.veggur.vmi.paging;

import static org.assertj.core.api.Assertions.assertThat;

import io.veggur.protocol.MemoryMap;
import io.veggur.vmi.memory.OutOfRangeException;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Hostile page tables: table pages full of random entries, most of them present and pointing back into the same
 * pages, walked at random addresses in both modes while the tables change under an un-invalidated cache. A walk may
 * only ever return an address whose 4 KiB page is guest RAM, or fail with a TranslationException or
 * OutOfRangeException. The seed is printed; rerun one with {@code -Dveggur.seed=N}.
 */
class PageTableWalkerRandomizedTest {
    private static final MemoryMap RAM = PageTableWalkerTest.RAM;
    private static final int TABLE_PAGES = 48;
    private static final int WALKS = 20_000;

    @Test
    @Timeout(60)
    void walk_randomTablesAndAddresses_returnsRamOrThrowsTranslationFailure() throws Exception {
        long seed = Long.getLong("veggur.seed", System.nanoTime());
        System.out.println("PageTableWalkerRandomizedTest seed " + seed);
        SplittableRandom random = new SplittableRandom(seed);
        for (PagingMode mode : PagingMode.values()) {
            for (int trial = 0; trial < 5; trial++) {
                runTrial(mode, random, seed);
            }
        }
    }

    private static void runTrial(PagingMode mode, SplittableRandom random, long seed) throws Exception {
        SparsePhysicalMemory memory = new SparsePhysicalMemory(RAM);
        long[] tables = new long[TABLE_PAGES];
        for (int i = 0; i < TABLE_PAGES; i++) {
            tables[i] = randomRamPage(random);
        }
        for (long table : tables) {
            for (int entry = 0; entry < 512; entry++) {
                memory.writeLong(table + entry * 8L, randomEntry(random, tables));
            }
        }
        PageTableWalker walker = new PageTableWalker(memory, mode, 1 << random.nextInt(8));
        int translated = 0;
        for (int walk = 0; walk < WALKS; walk++) {
            long root = random.nextInt(10) == 0 ? random.nextLong() : tables[random.nextInt(TABLE_PAGES)]
                    | random.nextLong() & 0x8000_0000_0000_0FFFL;
            long va = randomAddress(random, mode);
            try {
                Translation translation = walker.walk(root, va);
                long physical = walker.translate(root, va);
                assertThat(physical).as("seed %d, root 0x%x, va 0x%x", seed, root, va)
                        .isEqualTo(translation.physicalAddress());
                assertThat(RAM.regionOf(physical & -4096L, 4096)).as("seed %d, root 0x%x, va 0x%x", seed, root, va)
                        .isNotNull();
                assertThat(translation.pageSize()).isIn(Translation.PAGE_4K, Translation.PAGE_2M, Translation.PAGE_1G);
                translated++;
            } catch (TranslationException | OutOfRangeException expected) {
                // a broken table is reported, never followed
            }
            switch (random.nextInt(100)) {
                case 0 -> walker.invalidate();
                case 1 -> walker.invalidate(root);
                case 2, 3, 4 -> memory.writeLong(tables[random.nextInt(TABLE_PAGES)] + random.nextInt(512) * 8L,
                        randomEntry(random, tables));
                default -> { }
            }
            assertThat(walker.cache().size()).isLessThanOrEqualTo(walker.cache().capacity());
        }
        assertThat(translated).as("seed %d: the tables should map something", seed).isPositive();
    }

    /**
     * Mostly present table pointers back into the table pages, some large-page entries, some pointers anywhere in RAM
     * and some wholly random; flag and high bits random.
     */
    private static long randomEntry(SplittableRandom random, long[] tables) {
        long noise = random.nextLong() & 0xFFF0_0000_0000_0FFFL;
        return switch (random.nextInt(10)) {
            case 0 -> 0;
            case 1 -> random.nextLong();
            case 2 -> randomRamPage(random) | noise | PageTables.PRESENT;
            case 3 -> randomRamPage(random) & -Translation.PAGE_2M | noise | PageTables.PAGE_SIZE | PageTables.PRESENT;
            case 4 -> (4L << 30) + random.nextLong(2) * Translation.PAGE_1G | noise | PageTables.PAGE_SIZE
                    | PageTables.PRESENT;
            default -> tables[random.nextInt(tables.length)] | noise & ~PageTables.PAGE_SIZE | PageTables.PRESENT;
        };
    }

    private static long randomRamPage(SplittableRandom random) {
        return random.nextBoolean()
                ? random.nextLong(64L << 20 >> 12) << 12
                : (4L << 30) + (random.nextLong(2L << 30 >> 12) << 12);
    }

    /** Canonical most of the time, so that walks get deep. */
    private static long randomAddress(SplittableRandom random, PagingMode mode) {
        long va = random.nextLong();
        if (random.nextInt(8) == 0) {
            return va;
        }
        int unused = 64 - mode.virtualAddressBits();
        return va << unused >> unused;
    }
}
