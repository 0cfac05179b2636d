package io.veggur.vmi.symbols.btf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.Timeout.ThreadMode;

/** The running host kernel's own BTF (a recent kernel: 6.4+ module layout). */
class HostKernelBtfTest extends KernelBtfContract {
    private static final Path VMLINUX = Path.of("/sys/kernel/btf/vmlinux");
    private static byte[] raw;
    private static Btf btf;

    @BeforeAll
    static void parseHostBtf() throws Exception {
        assumeTrue(Files.isReadable(VMLINUX), "this host kernel exposes no " + VMLINUX);
        raw = Files.readAllBytes(VMLINUX);
        btf = Btf.parse(ByteBuffer.wrap(raw));
    }

    @Override
    Btf btf() {
        return btf;
    }

    @Override
    Path btfFile() {
        return VMLINUX;
    }

    @Test
    void member_moduleMemArray_indexedPathAddsElementOffsets() throws Exception {
        StructLayout module = btf.struct("module");
        assumeTrue(module.hasMember("mem"), "kernel older than 6.4");

        Member mem = module.member("mem");
        long modMemNumTypes = btf.enumValue("mod_mem_type", "MOD_MEM_NUM_TYPES").orElseThrow();
        int elementSize = btf.sizeOf("module_memory");
        int sizeInElement = btf.struct("module_memory").member("size").byteOffset();

        assertThat(mem.type().elementCount()).isEqualTo(modMemNumTypes);
        assertThat(mem.type().target().name()).isEqualTo("module_memory");
        assertThat(btf.enumValue(null, "MOD_TEXT")).hasValue(0);
        assertThat(module.member("mem[2].size").byteOffset())
                .isEqualTo(mem.byteOffset() + 2 * elementSize + sizeInElement);
        assertThat(module.hasMember("core_layout")).isFalse();
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = ThreadMode.SEPARATE_THREAD)
    void parse_vmlinuxAfterWarmUp_takesWellUnder100Milliseconds() throws Exception {
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 40; i++) {
            long start = System.nanoTime();
            Btf parsed = Btf.parse(ByteBuffer.wrap(raw));
            long elapsed = System.nanoTime() - start;
            assertThat(parsed.typeCount()).isEqualTo(btf.typeCount());
            best = Math.min(best, elapsed);
        }
        System.out.printf("parsed %d bytes of host BTF (%d types) in %.2f ms at best%n", raw.length,
                btf.typeCount(), best / 1e6);
        assertThat(best).isLessThan(TimeUnit.MILLISECONDS.toNanos(100));
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = ThreadMode.SEPARATE_THREAD)
    void parseAndQuery_randomlyCorruptedVmlinux_onlyBtfExceptionOrSuccess() {
        long seed = System.nanoTime();
        System.out.println("HostKernelBtfTest fuzz seed " + seed);
        Random random = new Random(seed);
        for (int iteration = 0; iteration < 150; iteration++) {
            byte[] corrupt = raw.clone();
            for (int flips = 1 + random.nextInt(32); flips > 0; flips--) {
                corrupt[random.nextInt(corrupt.length)] ^= (byte) (1 + random.nextInt(255));
            }
            try {
                Btf parsed = Btf.parse(ByteBuffer.wrap(corrupt));
                BtfFuzzing.query(parsed, random);
            } catch (BtfException expected) {
                // malformed input is allowed to be rejected, as long as it is rejected this way
            } catch (Throwable t) {
                fail("seed " + seed + ", iteration " + iteration + ": " + t, t);
            }
        }
    }
}
