package io.veggur.vmi.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.MemoryRegion;
import io.veggur.protocol.Request.PhysicalRange;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class PageCacheTest {
    private static final int PAGE = PageCache.PAGE;
    /** Two RAM regions with a hole between them, as q35 has below and above 4 GiB. */
    private static final MemoryMap MAP = new MemoryMap(List.of(new MemoryRegion(0, 64 * PAGE, 0),
            new MemoryRegion(80L * PAGE, 16 * PAGE, 64L * PAGE)));

    /** Guest RAM whose byte at guest address a is a function of a; counts and records every batch it serves. */
    private static final class CountingMemory implements PhysicalMemory {
        final List<List<PhysicalRange>> batches = new ArrayList<>();
        int generation;

        @Override
        public MemoryMap memoryMap() {
            return MAP;
        }

        @Override
        public void read(long address, byte[] dst, int offset, int length) throws IOException {
            readBatch(List.of(new PhysicalRange(address, length)), dst, offset);
        }

        @Override
        public void readBatch(List<PhysicalRange> ranges, byte[] dst) throws IOException {
            readBatch(ranges, dst, 0);
        }

        private void readBatch(List<PhysicalRange> ranges, byte[] dst, int offset) throws IOException {
            batches.add(List.copyOf(ranges));
            int position = offset;
            for (PhysicalRange range : ranges) {
                if (MAP.regionOf(range.address(), range.length()) == null) {
                    throw new OutOfRangeException(range.address(), range.length());
                }
                for (int i = 0; i < range.length(); i++) {
                    dst[position++] = byteAt(range.address() + i, generation);
                }
            }
        }

        @Override
        public void close() {}
    }

    static byte byteAt(long address, int generation) {
        return (byte) (address * 31 + address / PAGE + generation);
    }

    private static void assertBytes(byte[] bytes, long address, int generation) {
        byte[] expected = new byte[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            expected[i] = byteAt(address + i, generation);
        }
        assertThat(bytes).as("%d bytes at %x", bytes.length, address).isEqualTo(expected);
    }

    @Test
    void aMiss_fetchesItsAlignedBlock_inOneBatch_andTheNeighboursAreThenHits() throws IOException {
        CountingMemory source = new CountingMemory();
        PageCache cache = new PageCache(source, 64, 4, TimeUnit.SECONDS.toNanos(60));
        assertBytes(cache.read(5L * PAGE + 100, 16), 5L * PAGE + 100, 0);
        assertThat(source.batches).containsExactly(List.of(new PhysicalRange(4L * PAGE, 4 * PAGE)));
        assertBytes(cache.read(7L * PAGE + 4088, 8), 7L * PAGE + 4088, 0);
        assertThat(source.batches).hasSize(1);
        // Across into the next block: only that block is fetched.
        assertBytes(cache.read(7L * PAGE + 4000, 200), 7L * PAGE + 4000, 0);
        assertThat(source.batches).hasSize(2);
        assertThat(source.batches.get(1)).containsExactly(new PhysicalRange(8L * PAGE, 4 * PAGE));
    }

    @Test
    void readAhead_neverLeavesTheRegion() throws IOException {
        CountingMemory source = new CountingMemory();
        PageCache cache = new PageCache(source, 64, 32, TimeUnit.SECONDS.toNanos(60));
        assertBytes(cache.read(81L * PAGE, 8), 81L * PAGE, 0);
        assertThat(source.batches).containsExactly(List.of(new PhysicalRange(80L * PAGE, 16 * PAGE)));
    }

    @Test
    void invalidate_andAge_makeTheNextReadFetchAgain() throws Exception {
        CountingMemory source = new CountingMemory();
        PageCache cache = new PageCache(source, 64, 1, TimeUnit.MILLISECONDS.toNanos(50));
        cache.read(0, 8);
        source.generation = 1;
        assertBytes(cache.read(0, 8), 0, 0);
        cache.invalidate();
        assertBytes(cache.read(0, 8), 0, 1);
        source.generation = 2;
        Thread.sleep(80);
        assertBytes(cache.read(0, 8), 0, 2);
        assertThat(source.batches).hasSize(3);
    }

    @Test
    void theCacheStaysBounded_andBigReadsGoStraightThrough() throws IOException {
        CountingMemory source = new CountingMemory();
        PageCache cache = new PageCache(source, 8, 1, TimeUnit.SECONDS.toNanos(60));
        for (long page = 0; page < 64; page++) {
            cache.read(page * PAGE, 8);
        }
        int before = source.batches.size();
        cache.read(63L * PAGE, 8);
        cache.read(0, 8);
        assertThat(source.batches.size() - before).as("page 63 is still cached, page 0 was evicted").isEqualTo(1);
        byte[] big = new byte[16 * PAGE];
        cache.read(PAGE, big, 0, big.length);
        assertBytes(big, PAGE, 0);
        assertThat(source.batches.getLast()).containsExactly(new PhysicalRange(PAGE, 16 * PAGE));
    }

    @Test
    void outsideRam_failsLikeTheSource() {
        PageCache cache = new PageCache(new CountingMemory(), 64, 4, TimeUnit.SECONDS.toNanos(60));
        assertThatThrownBy(() -> cache.read(70L * PAGE, 8)).isInstanceOf(OutOfRangeException.class);
        assertThatThrownBy(() -> cache.read(64L * PAGE - 4, 8)).isInstanceOf(OutOfRangeException.class);
    }

    /** Random reads and batches through the cache return exactly what the source holds. Seeded; the seed is logged. */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 0x5eed})
    void randomReads_equalTheSource(long seed) throws IOException {
        System.out.println("PageCacheTest seed=" + seed);
        Random random = new Random(seed);
        CountingMemory source = new CountingMemory();
        PageCache cache = new PageCache(source, 16, 1 << random.nextInt(4), TimeUnit.SECONDS.toNanos(60));
        for (int i = 0; i < 2000; i++) {
            MemoryRegion region = MAP.regions().get(random.nextInt(2));
            int length = 1 + random.nextInt(random.nextBoolean() ? 64 : 3 * PAGE);
            long address = region.guestPhysical() + (long) (random.nextDouble() * (region.size() - length));
            if (random.nextInt(4) == 0) {
                long second = MAP.regions().getFirst().guestPhysical() + random.nextInt(60 * PAGE);
                byte[] both = new byte[length + 16];
                cache.readBatch(List.of(new PhysicalRange(address, length), new PhysicalRange(second, 16)), both);
                assertBytes(Arrays.copyOfRange(both, 0, length), address, 0);
                assertBytes(Arrays.copyOfRange(both, length, length + 16), second, 0);
            } else {
                byte[] bytes = new byte[length + 3];
                cache.read(address, bytes, 3, length);
                assertBytes(Arrays.copyOfRange(bytes, 3, bytes.length), address, 0);
            }
        }
    }
}
