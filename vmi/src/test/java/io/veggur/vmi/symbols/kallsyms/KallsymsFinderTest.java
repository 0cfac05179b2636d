package io.veggur.vmi.symbols.kallsyms;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.MemoryRegion;
import io.veggur.vmi.memory.MappedPhysicalMemory;
import io.veggur.vmi.symbols.kallsyms.KernelSymbols.Symbol;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(60)
class KallsymsFinderTest {
    static final int RAM = 32 << 20;
    static final long KASLR_SLIDE = 0x1ce0_0000L;

    /** The kernels each combination of layout and address encoding stands for. */
    enum Generation {
        LINUX_4_19(Layout.U64_MARKERS, true, false),
        LINUX_5_10(Layout.U32_MARKERS, true, false),
        LINUX_6_1(Layout.U32_MARKERS, true, true),
        LINUX_6_2(Layout.SEQS_BEFORE_TOKEN_TABLE, true, true),
        LINUX_6_12(Layout.OFFSETS_AFTER_TOKEN_INDEX, true, true),
        LINUX_6_15(Layout.OFFSETS_AFTER_TOKEN_INDEX, false, true);

        final Layout layout;
        final boolean absolutePercpu;
        final boolean bigLengths;

        Generation(Layout layout, boolean absolutePercpu, boolean bigLengths) {
            this.layout = layout;
            this.absolutePercpu = absolutePercpu;
            this.bigLengths = bigLengths;
        }

        SyntheticKernel kernel(long slide, int count) {
            return SyntheticKernel.create(layout, absolutePercpu, bigLengths, slide, count, ordinal());
        }
    }

    @ParameterizedTest
    @EnumSource
    void find_withKaslr_decodesEverySymbolAndLocatesTheImage(Generation generation) throws Exception {
        SyntheticKernel kernel = generation.kernel(KASLR_SLIDE, 3000);
        long physical = 12 << 20;
        ByteArrayPhysicalMemory memory = flat(kernel.ram(RAM, physical, 1));

        KernelSymbols symbols = KallsymsFinder.find(memory);

        assertSameSymbols(symbols, kernel);
        assertThat(symbols.layout()).isEqualTo(generation.layout);
        assertThat(symbols.absolutePercpu()).isEqualTo(generation.absolutePercpu);
        assertThat(symbols.kaslrSlide()).isEqualTo(KASLR_SLIDE);
        assertThat(symbols.physBase()).isEqualTo(kernel.physBase(physical));
        assertThat(symbols.textPhysical()).isEqualTo(physical);
        long banner = symbols.address("linux_banner").orElseThrow();
        assertThat(new String(memory.read(symbols.imagePhysical(banner), 14), StandardCharsets.US_ASCII))
                .isEqualTo("Linux version ");
    }

    @ParameterizedTest
    @EnumSource
    void find_withoutKaslr_hasNoSlideAndPhysBaseZero(Generation generation) throws Exception {
        SyntheticKernel kernel = generation.kernel(0, 1000);
        KernelSymbols symbols = KallsymsFinder.find(flat(kernel.ram(RAM, 16 << 20, 2)));

        assertSameSymbols(symbols, kernel);
        assertThat(symbols.kaslrSlide()).isZero();
        assertThat(symbols.physBase()).isZero();
        assertThat(symbols.imagePhysical(KernelSymbols.DEFAULT_TEXT)).isEqualTo(16 << 20);
    }

    /** Marker edge cases: one block, exactly full blocks, one symbol into a new block. */
    @ParameterizedTest
    @ValueSource(ints = {30, 256, 257, 512, 513})
    void find_withBlockEdgeCounts_decodesEverySymbol(int count) throws Exception {
        for (Generation generation : Generation.values()) {
            SyntheticKernel kernel = generation.kernel(KASLR_SLIDE, count);
            KernelSymbols symbols = KallsymsFinder.find(flat(kernel.ram(RAM, 4 << 20, count)));
            assertSameSymbols(symbols, kernel);
        }
    }

    @Test
    void find_bigLengths_decodesANameOfMoreThan127Tokens() throws Exception {
        SyntheticKernel kernel = Generation.LINUX_6_12.kernel(KASLR_SLIDE, 500);
        String longName = kernel.symbols.stream().map(SyntheticKernel.Symbol::name)
                .filter(n -> n.startsWith("long_rust_name_")).findFirst().orElseThrow();

        KernelSymbols symbols = KallsymsFinder.find(flat(kernel.ram(RAM, 4 << 20, 3)));

        assertThat(longName).hasSizeGreaterThan(300);
        assertThat(symbols.address(longName)).hasValue(kernel.text + 0x4000);
        assertThat(symbols.bigLengths()).isTrue();
    }

    @Test
    void symbolAt_returnsTheFirstSymbolAtOrBelow_withinTheImage() throws Exception {
        SyntheticKernel kernel = Generation.LINUX_6_12.kernel(KASLR_SLIDE, 500);
        KernelSymbols symbols = KallsymsFinder.find(flat(kernel.ram(RAM, 4 << 20, 4)));
        long text = kernel.text;

        assertThat(symbols.symbolAt(text)).contains(new Symbol("_text", 'T', text));
        assertThat(symbols.symbolAt(text + 0x1234)).contains(new Symbol("digits_0123456789", 'T', text + 0x1000));
        assertThat(symbols.symbolAt(text + 0x2000)).contains(new Symbol("duplicate_static", 't', text + 0x2000));
        long end = symbols.address("_end").orElseThrow();
        assertThat(symbols.symbolAt(end)).map(Symbol::name).contains("_end");
        assertThat(symbols.symbolAt(end + 1)).isEmpty();
        assertThat(symbols.symbolAt(text - 1)).isEmpty();
        assertThat(symbols.symbolAt(0x1000)).as("per-CPU offsets are not image addresses").isEmpty();
        assertThat(symbols.address("percpu_var_0")).hasValue(0x1000);
        assertThat(symbols.symbol("percpu_var_0")).contains(new Symbol("percpu_var_0", 'A', 0x1000));
    }

    @Test
    void lookups_byName_returnTheFirstOccurrence_andEmptyForUnknownNames() throws Exception {
        SyntheticKernel kernel = Generation.LINUX_5_10.kernel(KASLR_SLIDE, 500);
        KernelSymbols symbols = KallsymsFinder.find(flat(kernel.ram(RAM, 4 << 20, 5)));

        assertThat(symbols.address("duplicate_static")).hasValue(kernel.text + 0x2000);
        assertThat(symbols.address("no_such_symbol")).isEmpty();
        assertThat(symbols.address("")).isEmpty();
        assertThat(symbols.symbol("linux_bänner")).isEmpty();
    }

    @Test
    void imagePhysical_ofAnAddressOutsideTheImage_isRejected() throws Exception {
        KernelSymbols symbols = KallsymsFinder.find(flat(Generation.LINUX_6_1.kernel(0, 300).ram(RAM, 4 << 20, 6)));

        for (long address : new long[] {0x1000, 0xffff_8880_0000_0000L, 0xffff_ffff_c000_0000L}) {
            assertThatThrownBy(() -> symbols.imagePhysical(address)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void find_inTheRegionAboveFourGiB_locatesTheImageThere() throws Exception {
        SyntheticKernel kernel = Generation.LINUX_6_12.kernel(KASLR_SLIDE, 1000);
        long high = 4L << 30;
        MemoryMap map = new MemoryMap(List.of(new MemoryRegion(0, 16 << 20, 0),
                new MemoryRegion(high, 16 << 20, 16 << 20)));
        byte[] backing = new byte[32 << 20];
        SyntheticKernel.noise(backing, 7);
        System.arraycopy(kernel.image, 0, backing, (16 << 20) + (6 << 20), SyntheticKernel.IMAGE_SIZE);

        KernelSymbols symbols = KallsymsFinder.find(new ByteArrayPhysicalMemory(map, backing));

        assertSameSymbols(symbols, kernel);
        assertThat(symbols.textPhysical()).isEqualTo(high + (6 << 20));
    }

    @Test
    void find_inAMappedImageFile_decodesEverySymbol(@TempDir Path dir) throws Exception {
        SyntheticKernel kernel = Generation.LINUX_6_2.kernel(KASLR_SLIDE, 2000);
        Path file = dir.resolve("ram.img");
        Files.write(file, kernel.ram(RAM, 20 << 20, 8));

        try (MappedPhysicalMemory memory = MappedPhysicalMemory.of(file, MemoryMap.flat(RAM))) {
            assertSameSymbols(KallsymsFinder.find(memory), kernel);
        }
    }

    @Test
    void find_skipsLookAlikesBelowTheKernel() throws Exception {
        SyntheticKernel kernel = Generation.LINUX_6_12.kernel(KASLR_SLIDE, 1000);
        byte[] ram = kernel.ram(RAM, 16 << 20, 9);
        // UTF-16 text of the same shape, as in fonts and firmware tables.
        byte[] utf16 = "/0123456789:;<=>?".getBytes(StandardCharsets.UTF_16LE);
        for (int i = 0; i < 50; i++) {
            System.arraycopy(utf16, 0, ram, 0x10000 + i * 0x1001, utf16.length);
        }
        // A stale copy of the token table without the index after it, and one without the arrays before it.
        int tokens = kernel.tokenTable;
        System.arraycopy(kernel.image, tokens, ram, 2 << 20, kernel.tokenIndex - tokens);
        System.arraycopy(kernel.image, tokens, ram, 3 << 20, kernel.tokenIndex + 512 - tokens);

        KernelSymbols symbols = KallsymsFinder.find(flat(ram));

        assertSameSymbols(symbols, kernel);
        assertThat(symbols.textPhysical()).isEqualTo(16 << 20);
    }

    @Test
    void find_withoutAKernel_saysWhatWasSearched() {
        byte[] ram = new byte[RAM];
        SyntheticKernel.noise(ram, 10);

        assertThatThrownBy(() -> KallsymsFinder.find(flat(ram))).isInstanceOf(KallsymsException.class)
                .hasMessage("no kallsyms token table found in 32 MiB of RAM: not a Linux guest, or not booted yet");
    }

    @Test
    void find_withoutLinuxBanner_saysTheImageCannotBePlaced() {
        SyntheticKernel kernel = Generation.LINUX_6_12.kernel(KASLR_SLIDE, 500);
        byte[] ram = kernel.ram(RAM, 4 << 20, 11);
        ram[(4 << 20) + SyntheticKernel.RODATA + 0x300] = 'l';

        assertThatThrownBy(() -> KallsymsFinder.find(flat(ram))).isInstanceOf(KallsymsException.class)
                .hasMessageContaining("no complete kallsyms tables in 32 MiB of RAM")
                .hasMessageContaining("shows linux_banner");
    }

    static ByteArrayPhysicalMemory flat(byte[] ram) {
        return new ByteArrayPhysicalMemory(MemoryMap.flat(ram.length), ram);
    }

    static void assertSameSymbols(KernelSymbols symbols, SyntheticKernel kernel) {
        assertThat(symbols.count()).isEqualTo(kernel.symbols.size());
        for (SyntheticKernel.Symbol expected : kernel.firstOfEachName()) {
            assertThat(symbols.symbol(expected.name())).as(expected.name())
                    .contains(new Symbol(expected.name(), expected.type(), expected.address()));
        }
    }
}
