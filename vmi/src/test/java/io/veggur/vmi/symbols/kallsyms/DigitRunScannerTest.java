package io.veggur.vmi.symbols.kallsyms;

import static org.assertj.core.api.Assertions.assertThat;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.MemoryRegion;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class DigitRunScannerTest {
    static final byte[] RUN = "0\u00001\u00002\u00003\u00004\u00005\u00006\u00007\u00008\u00009\u0000"
            .getBytes(StandardCharsets.ISO_8859_1);
    static final int CHUNK = 4 << 20;

    @Test
    void next_findsEveryRunOnce_atAnyAlignment_acrossChunkBoundaries() throws Exception {
        List<Long> starts = new ArrayList<>();
        for (int k = 0; k < 16; k++) {
            starts.add(0x100L * k + k);                    // every offset from a 16-byte boundary
        }
        starts.addAll(List.of(CHUNK - 40L, CHUNK - 20L, CHUNK + 1L, 2L * CHUNK - 60, 2L * CHUNK - 10,
                (10L << 20) - 20));
        byte[] ram = new byte[10 << 20];
        for (long start : starts) {
            System.arraycopy(RUN, 0, ram, (int) start, RUN.length);
        }

        assertThat(scanAll(new ByteArrayPhysicalMemory(MemoryMap.flat(ram.length), ram))).isEqualTo(starts);
    }

    @Test
    void next_scansEveryRegion_andNoRunSpansTwo() throws Exception {
        MemoryMap map = new MemoryMap(List.of(new MemoryRegion(0, 6 << 20, 0),
                new MemoryRegion(1L << 32, 6 << 20, 6 << 20)));
        byte[] backing = new byte[12 << 20];
        System.arraycopy(RUN, 0, backing, (6 << 20) - 10, RUN.length);              // split across the regions
        System.arraycopy(RUN, 0, backing, (6 << 20) + 100, RUN.length);
        System.arraycopy(RUN, 0, backing, (12 << 20) - 20, RUN.length);             // ends exactly at the end
        ByteArrayPhysicalMemory memory = new ByteArrayPhysicalMemory(map, backing);

        assertThat(scanAll(memory)).containsExactly((1L << 32) + 100, (1L << 32) + (6 << 20) - 20);
    }

    @Test
    void next_ignoresAlmostRuns() throws Exception {
        byte[] ram = new byte[1 << 20];
        byte[] broken = RUN.clone();
        broken[18] = '8';
        System.arraycopy(broken, 0, ram, 100, broken.length);
        System.arraycopy(RUN, 0, ram, 1000, 19);
        ram[1019] = 'x';
        System.arraycopy("0123456789".getBytes(StandardCharsets.US_ASCII), 0, ram, 2000, 10);

        assertThat(scanAll(new ByteArrayPhysicalMemory(MemoryMap.flat(ram.length), ram))).isEmpty();
    }

    @Test
    void next_skippingUntouchedChunks_readsOnlyChunksThatMayHoldData() throws Exception {
        byte[] ram = new byte[12 << 20];
        System.arraycopy(RUN, 0, ram, CHUNK + 64, RUN.length);
        System.arraycopy(RUN, 0, ram, 2 * CHUNK + 64, RUN.length);
        // Claims the third chunk was never touched, though it holds a run: skipping must trust the claim.
        ByteArrayPhysicalMemory memory = new ByteArrayPhysicalMemory(MemoryMap.flat(ram.length), ram) {
            @Override
            public boolean mayContainData(long address, long length) {
                return address < 2L * CHUNK;
            }
        };
        DigitRunScanner sparse = new DigitRunScanner(memory, true);
        assertThat(sparse.next()).isEqualTo(CHUNK + 64L);
        assertThat(sparse.next()).isEqualTo(-1);
        assertThat(sparse.skipped()).isEqualTo(CHUNK);
        assertThat(scanAll(memory)).containsExactly(CHUNK + 64L, 2L * CHUNK + 64);
    }

    private static List<Long> scanAll(ByteArrayPhysicalMemory memory) throws Exception {
        DigitRunScanner scanner = new DigitRunScanner(memory, false);
        List<Long> runs = new ArrayList<>();
        for (long run = scanner.next(); run >= 0; run = scanner.next()) {
            runs.add(run);
        }
        assertThat(scanner.scanned()).isEqualTo(memory.memoryMap().totalSize());
        return runs;
    }
}
