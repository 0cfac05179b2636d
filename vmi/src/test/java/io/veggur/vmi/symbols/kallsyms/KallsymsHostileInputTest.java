package io.veggur.vmi.symbols.kallsyms;

import static io.veggur.vmi.symbols.kallsyms.KallsymsFinderTest.flat;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.MemoryRegion;
import io.veggur.vmi.symbols.kallsyms.KallsymsFinderTest.Generation;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Guest memory is untrusted: broken, truncated or deliberately misleading tables must end in a {@link
 * KallsymsException} or a consistent result, in bounded time and memory, and never in another exception.
 */
@Timeout(120)
class KallsymsHostileInputTest {
    static final int RAM = 12 << 20;
    static final long PHYSICAL = 2 << 20;
    static final long SLIDE = 0x0a00_0000L;

    @ParameterizedTest
    @EnumSource
    void find_withRandomCorruptionOfTheTables_failsCleanlyOrStaysConsistent(Generation generation) {
        long seed = System.nanoTime();
        System.out.println("find_withRandomCorruptionOfTheTables " + generation + " seed=" + seed);
        Random random = new Random(seed);
        SyntheticKernel kernel = generation.kernel(SLIDE, 700);
        byte[] pristine = kernel.ram(RAM, PHYSICAL, seed);
        int from = (int) PHYSICAL + SyntheticKernel.KALLSYMS;
        int to = (int) PHYSICAL + kernel.end;
        for (int round = 0; round < 100; round++) {
            byte[] ram = pristine.clone();
            for (int hits = 1 + random.nextInt(8); hits > 0; hits--) {
                int at = from + random.nextInt(to - from - 8);
                switch (random.nextInt(3)) {
                    case 0 -> ram[at] = (byte) random.nextInt();
                    case 1 -> ram[at] ^= (byte) (1 << random.nextInt(8));
                    default -> putInt(ram, at & -4, random.nextBoolean() ? random.nextInt() : random.nextInt(1 << 20));
                }
            }
            try {
                KernelSymbols symbols = KallsymsFinder.find(flat(ram));
                // Whatever survived the checks must be usable.
                assertThat(symbols.count()).as("seed %d round %d", seed, round).isPositive();
                symbols.symbolAt(kernel.text + 0x1234);
                symbols.address("linux_banner").orElseThrow();
            } catch (KallsymsException e) {
                assertThat(e.getMessage()).as("seed %d round %d", seed, round).isNotBlank();
            } catch (Exception | Error e) {
                throw new AssertionError("seed %d round %d: %s".formatted(seed, round, e), e);
            }
        }
    }

    @ParameterizedTest
    @EnumSource
    void find_withAbsurdSymbolCounts_fails(Generation generation) {
        SyntheticKernel kernel = generation.kernel(SLIDE, 600);
        for (long count : new long[] {0, 1, 599, 601, 0xffff_ffffL, 1L << 21, -1}) {
            byte[] ram = kernel.ram(RAM, PHYSICAL, 1);
            int at = (int) PHYSICAL + kernel.numSyms;
            if (generation.layout == Layout.U64_MARKERS) {
                putLong(ram, at, count);
            } else {
                putInt(ram, at, (int) count);
            }
            assertThatThrownBy(() -> KallsymsFinder.find(flat(ram))).as("num_syms %d", count)
                    .isInstanceOf(KallsymsException.class).hasMessageContaining("no complete kallsyms tables");
        }
    }

    @Test
    void find_withAMarkerOutOfOrder_fails() {
        SyntheticKernel kernel = Generation.LINUX_6_12.kernel(SLIDE, 1000);
        byte[] ram = kernel.ram(RAM, PHYSICAL, 2);
        putInt(ram, (int) PHYSICAL + kernel.markers + 8, 3);

        assertThatThrownBy(() -> KallsymsFinder.find(flat(ram))).isInstanceOf(KallsymsException.class)
                .hasMessageContaining("no complete kallsyms tables");
    }

    @Test
    void find_withUnsortedAddresses_fails() {
        SyntheticKernel kernel = Generation.LINUX_6_12.kernel(SLIDE, 1000);
        byte[] ram = kernel.ram(RAM, PHYSICAL, 3);
        int offsets = (int) PHYSICAL + kernel.offsets;
        putInt(ram, offsets + 4 * 500, ByteBuffer.wrap(ram).order(ByteOrder.LITTLE_ENDIAN).getInt(offsets + 4 * 900));

        assertThatThrownBy(() -> KallsymsFinder.find(flat(ram))).isInstanceOf(KallsymsException.class)
                .hasMessageContaining("no sorted kallsyms_offsets");
    }

    /** RAM that ends, or a region that starts, in the middle of the arrays. */
    @ParameterizedTest
    @EnumSource
    void find_withTablesCutByTheEndOfRam_fails(Generation generation) {
        SyntheticKernel kernel = generation.kernel(SLIDE, 1000);
        byte[] full = kernel.ram(RAM, PHYSICAL, 4);
        int[] cuts = {kernel.names + 100, kernel.markers + 4, kernel.tokenIndex + 100, kernel.offsets + 100,
                kernel.relativeBase + 4};
        for (int cut : cuts) {
            long size = PHYSICAL + cut;
            MemoryMap endsEarly = MemoryMap.flat(size);
            assertThatThrownBy(() -> KallsymsFinder.find(new ByteArrayPhysicalMemory(endsEarly, full)))
                    .as("RAM ends at image offset 0x%x", cut).isInstanceOf(KallsymsException.class);
            MemoryMap startsLate = new MemoryMap(List.of(new MemoryRegion(0, 1 << 20, 0),
                    new MemoryRegion(size, RAM - size, size)));
            assertThatThrownBy(() -> KallsymsFinder.find(new ByteArrayPhysicalMemory(startsLate, full)))
                    .as("RAM starts again at image offset 0x%x", cut).isInstanceOf(KallsymsException.class);
        }
    }

    @Test
    void find_inRamFullOfDigitRuns_givesUpAfterABoundedNumber() {
        byte[] ram = new byte[RAM];
        byte[] run = DigitRunScannerTest.RUN;
        for (int at = 0; at + run.length <= ram.length; at += run.length) {
            System.arraycopy(run, 0, ram, at, run.length);
        }
        ByteArrayPhysicalMemory memory = flat(ram);

        assertThatThrownBy(() -> KallsymsFinder.find(memory)).isInstanceOf(KallsymsException.class)
                .hasMessageContaining("gave up after");
        assertThat(memory.bytesRead).isLessThan(KallsymsFinder.CHECK_BUDGET + RAM);
    }

    @Test
    void find_amongManyTokenTablesWithoutTheRest_givesUpWithinTheCopyBudget() {
        SyntheticKernel kernel = Generation.LINUX_6_2.kernel(SLIDE, 300);
        byte[] tables = Arrays.copyOfRange(kernel.image, kernel.tokenTable, kernel.tokenIndex + 512);
        byte[] ram = new byte[64 << 20];
        for (int at = 1 << 20; at + tables.length < ram.length; at += 64 << 10) {
            System.arraycopy(tables, 0, ram, at, tables.length);
        }
        ByteArrayPhysicalMemory memory = flat(ram);

        assertThatThrownBy(() -> KallsymsFinder.find(memory)).isInstanceOf(KallsymsException.class)
                .hasMessageContaining("gave up after copying");
        assertThat(memory.bytesRead).isLessThan(KallsymsFinder.CHECK_BUDGET + ram.length);
    }

    /**
     * Names made of identical 8-byte entries whose every 8 bytes also read as a plausible num_syms: every 8-aligned
     * start before them fits all markers but the last, so only the last-block-first check keeps this from walking
     * two million entries for each of 32 000 starts.
     */
    @Test
    @Timeout(30)
    void find_withNamesWhereEveryStartLooksPlausible_failsQuickly() {
        int markerCount = 8192;
        int count = markerCount * 256 - 0xf9;                    // low byte 7: each entry is 7 tokens, 8 bytes
        byte[] ram = new byte[24 << 20];
        int names = 1 << 20;
        for (int at = names - (1 << 19); at < names + markerCount * 2048; at += 8) {
            putLong(ram, at, count);
        }
        int markers = names + markerCount * 2048;
        for (int k = 0; k < markerCount; k++) {
            putInt(ram, markers + 4 * k, 2048 * k);
        }
        SyntheticKernel kernel = Generation.LINUX_6_12.kernel(SLIDE, 300);
        System.arraycopy(kernel.image, kernel.tokenTable, ram, markers + 4 * markerCount,
                kernel.tokenIndex + 512 - kernel.tokenTable);

        assertThatThrownBy(() -> KallsymsFinder.find(flat(ram))).isInstanceOf(KallsymsException.class)
                .hasMessageContaining("no sorted kallsyms_offsets");
    }

    private static void putInt(byte[] bytes, int at, int value) {
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(at, value);
    }

    private static void putLong(byte[] bytes, int at, long value) {
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(at, value);
    }
}
