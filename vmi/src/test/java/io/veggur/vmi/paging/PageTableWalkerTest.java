package io.veggur.vmi.paging;

import static io.veggur.vmi.paging.PageTables.NO_EXECUTE;
import static io.veggur.vmi.paging.PageTables.PAGE_SIZE;
import static io.veggur.vmi.paging.PageTables.PRESENT;
import static io.veggur.vmi.paging.PageTables.USER;
import static io.veggur.vmi.paging.PageTables.WRITABLE;
import static io.veggur.vmi.paging.Translation.PAGE_1G;
import static io.veggur.vmi.paging.Translation.PAGE_2M;
import static io.veggur.vmi.paging.Translation.PAGE_4K;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.MemoryRegion;
import io.veggur.vmi.memory.OutOfRangeException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class PageTableWalkerTest {
    /** 64 MiB of low RAM, a hole up to 4 GiB, then 2 GiB of high RAM: like a q35 guest. */
    static final MemoryMap RAM = new MemoryMap(List.of(
            new MemoryRegion(0, 64L << 20, 0),
            new MemoryRegion(4L << 30, 2L << 30, 64L << 20)));
    static final long TABLES = 0x10_0000;
    static final long HOLE = 0x8000_0000L;

    private static final long USER_VA = 0x0000_7F12_3456_7000L;
    private static final long KERNEL_VA = 0xFFFF_8880_0000_0000L;

    private final SparsePhysicalMemory memory = new SparsePhysicalMemory(RAM);

    private PageTables tables(PagingMode mode) {
        return new PageTables(memory, mode, TABLES);
    }

    @ParameterizedTest
    @EnumSource(PagingMode.class)
    void translate_4KiBPage_returnsFrameAndOffset(PagingMode mode) throws Exception {
        PageTables tables = tables(mode).map(USER_VA, 0x30_5000, PAGE_4K);
        PageTableWalker walker = new PageTableWalker(memory, mode);

        assertThat(walker.translate(tables.root(), USER_VA + 0xABC)).isEqualTo(0x30_5ABCL);
    }

    @Test
    void translate_fiveLevelAddressAbove48Bits_usesPml5() throws Exception {
        long va = 0x00AB_CDEF_1234_5000L;
        PageTables tables = tables(PagingMode.FIVE_LEVEL).map(va, 0x30_6000, PAGE_4K)
                .map(va & 0x0000_FFFF_FFFF_FFFFL, 0x30_7000, PAGE_4K);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FIVE_LEVEL);

        assertThat(walker.translate(tables.root(), va + 8)).isEqualTo(0x30_6008L);
        assertThat(walker.translate(tables.root(), (va & 0x0000_FFFF_FFFF_FFFFL) + 8)).isEqualTo(0x30_7008L);
    }

    @ParameterizedTest
    @EnumSource(PagingMode.class)
    void walk_2MiBPage_reportsSizeAndIgnoresPatBit(PagingMode mode) throws Exception {
        PageTables tables = tables(mode).map(KERNEL_VA, 0x60_0000, PAGE_2M, PRESENT | WRITABLE | 1L << 12);
        PageTableWalker walker = new PageTableWalker(memory, mode);

        Translation translation = walker.walk(tables.root(), KERNEL_VA + 0x1_2345);

        assertThat(translation.physicalAddress()).isEqualTo(0x61_2345L);
        assertThat(translation.pageSize()).isEqualTo(PAGE_2M);
        assertThat(translation.pageBase()).isEqualTo(0x60_0000L);
    }

    @ParameterizedTest
    @EnumSource(PagingMode.class)
    void walk_1GiBPage_reportsSizeAndOffset(PagingMode mode) throws Exception {
        PageTables tables = tables(mode).map(KERNEL_VA, 5L << 30, PAGE_1G);
        PageTableWalker walker = new PageTableWalker(memory, mode);

        Translation translation = walker.walk(tables.root(), KERNEL_VA + 0x3456_789A);

        assertThat(translation.physicalAddress()).isEqualTo((5L << 30) + 0x3456_789A);
        assertThat(translation.pageSize()).isEqualTo(PAGE_1G);
    }

    @Test
    void walk_allLevelsPermissive_isUserWritableExecutable() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);

        Translation translation = new PageTableWalker(memory, PagingMode.FOUR_LEVEL).walk(tables.root(), USER_VA);

        assertThat(translation.user()).isTrue();
        assertThat(translation.writable()).isTrue();
        assertThat(translation.noExecute()).isFalse();
    }

    @Test
    void walk_oneLevelRestricts_effectiveBitsAreAndOfUserWritableAndOrOfNoExecute() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);
        tables.setEntry(USER_VA, 2, tables.entry(USER_VA, 2) & ~WRITABLE);
        tables.setEntry(USER_VA, 3, tables.entry(USER_VA, 3) & ~USER);
        tables.setEntry(USER_VA, 4, tables.entry(USER_VA, 4) | NO_EXECUTE);

        Translation translation = new PageTableWalker(memory, PagingMode.FOUR_LEVEL).walk(tables.root(), USER_VA);

        assertThat(translation.user()).isFalse();
        assertThat(translation.writable()).isFalse();
        assertThat(translation.noExecute()).isTrue();
    }

    @Test
    void translate_entryBits52To63Set_areNotAddressBits() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);
        for (int level = 1; level <= 4; level++) {
            tables.setEntry(USER_VA, level, tables.entry(USER_VA, level) | 0xFFF0_0000_0000_0000L);
        }

        Translation translation = new PageTableWalker(memory, PagingMode.FOUR_LEVEL).walk(tables.root(), USER_VA + 1);

        assertThat(translation.physicalAddress()).isEqualTo(0x30_5001L);
        assertThat(translation.noExecute()).isTrue();
    }

    @Test
    void translate_cr3WithPcidNoFlushAndLamBits_usesTableAddressOnly() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);
        long cr3 = tables.root() | 0xABC | 1L << 63 | 1L << 62 | 1L << 61;

        assertThat(new PageTableWalker(memory, PagingMode.FOUR_LEVEL).translate(cr3, USER_VA)).isEqualTo(0x30_5000L);
    }

    @ParameterizedTest
    @EnumSource(PagingMode.class)
    void translate_nonCanonical_throwsWithoutReadingMemory(PagingMode mode) throws Exception {
        PageTables tables = tables(mode);
        PageTableWalker walker = new PageTableWalker(memory, mode);
        long readsBefore = memory.reads();

        assertThatThrownBy(() -> walker.translate(tables.root(), 0x0100_0000_0000_0000L))
                .isInstanceOfSatisfying(TranslationException.class, e -> {
                    assertThat(e.reason()).isEqualTo(TranslationException.Reason.NON_CANONICAL);
                    assertThat(e.level()).isZero();
                    assertThat(e.virtualAddress()).isEqualTo(0x0100_0000_0000_0000L);
                });
        assertThat(memory.reads()).isEqualTo(readsBefore);
    }

    @ParameterizedTest
    @EnumSource(PagingMode.class)
    void translate_notPresentAtEachLevel_reportsThatLevel(PagingMode mode) throws Exception {
        for (int level = mode.levels(); level >= 1; level--) {
            PageTables tables = new PageTables(memory, mode, 0x100_0000L + level * 0x10_0000L)
                    .map(USER_VA, 0x30_5000, PAGE_4K);
            tables.setEntry(USER_VA, level, tables.entry(USER_VA, level) & ~PRESENT);
            PageTableWalker walker = new PageTableWalker(memory, mode);
            int expectedLevel = level;

            assertThatThrownBy(() -> walker.translate(tables.root(), USER_VA))
                    .isInstanceOfSatisfying(TranslationException.class, e -> {
                        assertThat(e.reason()).isEqualTo(TranslationException.Reason.NOT_PRESENT);
                        assertThat(e.level()).isEqualTo(expectedLevel);
                    });
        }
    }

    @Test
    void translate_tableOutsideRam_throwsOutsideRamWithCause() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);
        tables.setEntry(USER_VA, 2, HOLE | PRESENT | WRITABLE | USER);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);

        assertThatThrownBy(() -> walker.translate(tables.root(), USER_VA))
                .isInstanceOfSatisfying(TranslationException.class, e -> {
                    assertThat(e.reason()).isEqualTo(TranslationException.Reason.OUTSIDE_RAM);
                    assertThat(e.level()).isEqualTo(1);
                    assertThat(e.getCause()).isInstanceOf(OutOfRangeException.class);
                });
    }

    @Test
    void translate_rootOutsideRam_throwsOutsideRamAtTopLevel() {
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FIVE_LEVEL);

        assertThatThrownBy(() -> walker.translate(HOLE, USER_VA))
                .isInstanceOfSatisfying(TranslationException.class, e -> {
                    assertThat(e.reason()).isEqualTo(TranslationException.Reason.OUTSIDE_RAM);
                    assertThat(e.level()).isEqualTo(5);
                });
    }

    @Test
    void translate_pageOutsideRam_throwsOutsideRam() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, HOLE, PAGE_4K);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);

        assertThatThrownBy(() -> walker.translate(tables.root(), USER_VA))
                .isInstanceOfSatisfying(TranslationException.class, e -> {
                    assertThat(e.reason()).isEqualTo(TranslationException.Reason.OUTSIDE_RAM);
                    assertThat(e.level()).isEqualTo(1);
                    assertThat(e).hasMessageContaining("0x80000000");
                });
    }

    @Test
    void translate_largePagePartlyInRam_translatesTheRamPartWithoutCaching() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(KERNEL_VA, 0, PAGE_1G);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);

        assertThat(walker.translate(tables.root(), KERNEL_VA + 0x1234)).isEqualTo(0x1234L);
        long readsBefore = memory.reads();
        assertThat(walker.translate(tables.root(), KERNEL_VA + 0x1234)).isEqualTo(0x1234L);
        assertThat(memory.reads()).isGreaterThan(readsBefore);
        assertThatThrownBy(() -> walker.translate(tables.root(), KERNEL_VA + (80L << 20)))
                .isInstanceOfSatisfying(TranslationException.class,
                        e -> assertThat(e.reason()).isEqualTo(TranslationException.Reason.OUTSIDE_RAM));
    }

    @Test
    void translate_pageSizeBitInPml4e_throwsReservedBit() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);
        tables.setEntry(USER_VA, 4, tables.entry(USER_VA, 4) | PAGE_SIZE);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);

        assertThatThrownBy(() -> walker.translate(tables.root(), USER_VA))
                .isInstanceOfSatisfying(TranslationException.class, e -> {
                    assertThat(e.reason()).isEqualTo(TranslationException.Reason.RESERVED_BIT);
                    assertThat(e.level()).isEqualTo(4);
                });
    }

    @Test
    void translate_2MiBPageWithLowAddressBits_throwsReservedBit() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(KERNEL_VA, 0x60_0000 | 1L << 13, PAGE_2M);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);

        assertThatThrownBy(() -> walker.translate(tables.root(), KERNEL_VA))
                .isInstanceOfSatisfying(TranslationException.class, e -> {
                    assertThat(e.reason()).isEqualTo(TranslationException.Reason.RESERVED_BIT);
                    assertThat(e.level()).isEqualTo(2);
                });
    }

    @ParameterizedTest
    @EnumSource(PagingMode.class)
    void translate_recursiveSelfMapEntry_terminatesAtTheTopTable(PagingMode mode) throws Exception {
        PageTables tables = tables(mode);
        int self = 0x1ED;
        memory.writeLong(tables.root() + self * 8L, tables.root() | PRESENT | WRITABLE);
        long va = 0;
        for (int level = mode.levels(); level >= 1; level--) {
            va |= (long) self << (12 + 9 * (level - 1));
        }
        int unused = 64 - mode.virtualAddressBits();
        va = va << unused >> unused;
        PageTableWalker walker = new PageTableWalker(memory, mode);

        assertThat(walker.translate(tables.root(), va + 0x18)).isEqualTo(tables.root() + 0x18);
    }

    @Test
    @Timeout(10)
    void translate_everyEntryPointsToItsOwnTable_terminates() throws Exception {
        PageTables tables = tables(PagingMode.FIVE_LEVEL);
        for (int i = 0; i < 512; i++) {
            memory.writeLong(tables.root() + i * 8L, tables.root() | PRESENT);
        }
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FIVE_LEVEL);

        assertThat(walker.translate(tables.root(), 0x0012_3456_789A_BCDEL)).isEqualTo(tables.root() + 0xCDE);
        assertThat(walker.translate(tables.root(), -8)).isEqualTo(tables.root() + 0xFF8);
    }

    @Test
    void translate_cacheHit_readsNoMemory() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(KERNEL_VA, 0x60_0000, PAGE_2M);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);
        walker.translate(tables.root(), KERNEL_VA);
        long readsBefore = memory.reads();

        assertThat(walker.translate(tables.root(), KERNEL_VA + 0x1F_FFFF)).isEqualTo(0x7F_FFFFL);
        assertThat(walker.walk(tables.root() | 0x5, KERNEL_VA + 8).physicalAddress()).isEqualTo(0x60_0008L);
        assertThat(memory.reads()).isEqualTo(readsBefore);
    }

    @Test
    void translate_remappedWithoutInvalidate_returnsStaleFrameUntilInvalidated() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);
        assertThat(walker.translate(tables.root(), USER_VA)).isEqualTo(0x30_5000L);

        tables.map(USER_VA, 0x40_0000, PAGE_4K);

        assertThat(walker.translate(tables.root(), USER_VA)).isEqualTo(0x30_5000L);
        assertThat(walker.walk(tables.root(), USER_VA).physicalAddress()).isEqualTo(0x30_5000L);
        walker.invalidate();
        assertThat(walker.translate(tables.root(), USER_VA)).isEqualTo(0x40_0000L);
    }

    @Test
    void translate_unmappedWithoutInvalidate_succeedsUntilInvalidated() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);
        walker.translate(tables.root(), USER_VA);

        tables.setEntry(USER_VA, 1, 0);

        assertThat(walker.translate(tables.root(), USER_VA)).isEqualTo(0x30_5000L);
        walker.invalidate();
        assertThatThrownBy(() -> walker.translate(tables.root(), USER_VA)).isInstanceOf(TranslationException.class);
    }

    @Test
    void invalidateRoot_withFlagBits_dropsOnlyThatAddressSpace() throws Exception {
        PageTables first = tables(PagingMode.FOUR_LEVEL).map(USER_VA, 0x30_5000, PAGE_4K);
        PageTables second = new PageTables(memory, PagingMode.FOUR_LEVEL, 2 * TABLES).map(USER_VA, 0x31_5000, PAGE_4K);
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL);
        walker.translate(first.root(), USER_VA);
        walker.translate(second.root(), USER_VA);
        first.map(USER_VA, 0x40_0000, PAGE_4K);
        second.map(USER_VA, 0x41_0000, PAGE_4K);

        walker.invalidate(first.root() | 0x7 | 1L << 63);

        assertThat(walker.translate(first.root(), USER_VA)).isEqualTo(0x40_0000L);
        assertThat(walker.translate(second.root(), USER_VA)).isEqualTo(0x31_5000L);
    }

    @Test
    void translate_moreMappedPagesThanCacheSlots_cacheStaysBoundedAndAnswersStayRight() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL);
        for (int i = 0; i < 200; i++) {
            tables.map(USER_VA + i * PAGE_4K, 0x200_0000 + 7 * i * PAGE_4K, PAGE_4K);
            tables.map(KERNEL_VA + i * PAGE_2M, 0x200_0000 + i * PAGE_2M % (32L << 20), PAGE_2M);
        }
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL, 8);

        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 200; i++) {
                assertThat(walker.translate(tables.root(), USER_VA + i * PAGE_4K + 5))
                        .isEqualTo(0x200_0000 + 7 * i * PAGE_4K + 5);
                assertThat(walker.translate(tables.root(), KERNEL_VA + i * PAGE_2M + 5))
                        .isEqualTo(0x200_0000 + i * PAGE_2M % (32L << 20) + 5);
                assertThat(walker.cache().size()).isLessThanOrEqualTo(walker.cache().capacity());
            }
        }
        assertThat(walker.cache().capacity()).isEqualTo(3 * 8);
        assertThat(walker.cache().size()).isPositive();
    }

    @Test
    @Timeout(30)
    void translate_concurrentWithRemapAndInvalidate_alwaysReturnsAFrameThatWasMapped() throws Exception {
        PageTables tables = tables(PagingMode.FOUR_LEVEL);
        int pages = 64;
        for (int i = 0; i < pages; i++) {
            tables.map(USER_VA + i * PAGE_4K, 0x100_0000 + i * PAGE_4K, PAGE_4K);
        }
        PageTableWalker walker = new PageTableWalker(memory, PagingMode.FOUR_LEVEL, 16);
        AtomicBoolean stop = new AtomicBoolean();
        List<Future<Long>> readers = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            for (int t = 0; t < 4; t++) {
                readers.add(pool.submit(() -> {
                    long checked = 0;
                    while (!stop.get()) {
                        for (int i = 0; i < pages; i++) {
                            long physical = walker.translate(tables.root(), USER_VA + i * PAGE_4K + 9);
                            long offset = physical - 9 - 0x100_0000 - i * PAGE_4K;
                            if (offset != 0 && offset != 0x100_0000) {
                                throw new AssertionError("page %d translated to 0x%x".formatted(i, physical));
                            }
                            checked++;
                        }
                    }
                    return checked;
                }));
            }
            for (int round = 0; round < 2000; round++) {
                long shift = (round & 1) * 0x100_0000L;
                for (int i = 0; i < pages; i++) {
                    tables.setEntry(USER_VA + i * PAGE_4K, 1,
                            (0x100_0000 + shift + i * PAGE_4K) | PRESENT | WRITABLE | USER);
                }
                walker.invalidate();
            }
            stop.set(true);
            for (Future<Long> reader : readers) {
                assertThat(reader.get()).isPositive();
            }
        }
    }

    @Test
    void kernelRoot_ptiOn_clearsTheUserPgdBit() {
        assertThat(PageTableWalker.kernelRoot(0x1234_3000L | 0x800 | 0x1, true)).isEqualTo(0x1234_2801L);
        assertThat(PageTableWalker.kernelRoot(0x1234_2000L, true)).isEqualTo(0x1234_2000L);
    }

    @Test
    void kernelRoot_ptiOff_returnsCr3Unchanged() {
        assertThat(PageTableWalker.kernelRoot(0x1234_3000L, false)).isEqualTo(0x1234_3000L);
    }
}
