package io.veggur.vmi.symbols.btf;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Veggur test guest's Debian kernel (6.1 when written), its BTF extracted from the bzImage that guest/build.sh
 * caches: the module layout of kernels before 6.4.
 */
class DebianGuestKernelBtfTest extends KernelBtfContract {
    @TempDir
    static Path workDir;
    private static Path btfFile;
    private static Btf btf;

    @BeforeAll
    static void extractGuestBtf() throws Exception {
        Path vmlinuz = KernelImageBtf.testGuestKernel()
                .orElseThrow(() -> new IllegalStateException("the test guest kernel is not built; ./veggur test builds it"));
        byte[] raw = KernelImageBtf.extract(vmlinuz, workDir);
        btfFile = Files.write(workDir.resolve("btf"), raw);
        btf = Btf.parse(ByteBuffer.wrap(raw));
    }

    @Override
    Btf btf() {
        return btf;
    }

    @Override
    Path btfFile() {
        return btfFile;
    }

    @Test
    void member_moduleBeforeLinux64_hasCoreLayoutInsteadOfMem() throws Exception {
        StructLayout module = btf.struct("module");
        assertThat(module.hasMember("core_layout")).as("the default test guest is bookworm's 6.1 kernel").isTrue();

        assertThat(module.hasMember("mem")).isFalse();
        assertThat(module.member("core_layout").type().name()).isEqualTo("module_layout");
        assertThat(module.member("core_layout.size").type().size()).isEqualTo(4);
        assertThat(module.member("core_layout.size").byteOffset())
                .isEqualTo(module.member("core_layout").byteOffset()
                        + btf.struct("module_layout").member("size").byteOffset());
        assertThat(btf.typeId("mod_mem_type", Kind.ENUM)).isEmpty();
    }
}
