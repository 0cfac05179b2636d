package io.veggur.vmi.paging;

import static io.veggur.vmi.paging.Translation.PAGE_2M;
import static io.veggur.vmi.paging.Translation.PAGE_4K;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class VirtualMemoryTest {
    private static final long VA = 0x0000_5555_0000_0000L;
    private static final long FIRST_FRAME = 0x50_3000L;
    private static final long SECOND_FRAME = 0x20_7000L;

    private final SparsePhysicalMemory memory = new SparsePhysicalMemory(PageTableWalkerTest.RAM);
    private PageTables tables;
    private VirtualMemory virtualMemory;

    /** VA -> FIRST_FRAME, VA+4K -> SECOND_FRAME (not adjacent), VA+8K unmapped. */
    @BeforeEach
    void mapTwoPages() {
        tables = new PageTables(memory, PagingMode.FOUR_LEVEL, PageTableWalkerTest.TABLES)
                .map(VA, FIRST_FRAME, PAGE_4K)
                .map(VA + PAGE_4K, SECOND_FRAME, PAGE_4K);
        virtualMemory = new VirtualMemory(new PageTableWalker(memory, PagingMode.FOUR_LEVEL), tables.root());
    }

    @Test
    void read_withinOnePage_readsTheFrame() throws Exception {
        memory.write(FIRST_FRAME + 0x10, bytes("hello"));

        assertThat(virtualMemory.read(VA + 0x10, 5)).isEqualTo(bytes("hello"));
    }

    @Test
    void read_crossingIntoMappedPage_joinsBothFrames() throws Exception {
        memory.write(FIRST_FRAME + 0xFFD, bytes("abc"));
        memory.write(SECOND_FRAME, bytes("def"));
        byte[] dst = new byte[10];

        virtualMemory.read(VA + 0xFFD, dst, 2, 6);

        assertThat(new String(dst, 2, 6, StandardCharsets.US_ASCII)).isEqualTo("abcdef");
        assertThat(dst[0]).isZero();
        assertThat(dst[8]).isZero();
    }

    @Test
    void read_crossingIntoUnmappedPage_throwsNotPresentAndLeavesDstUntouched() {
        byte[] dst = new byte[16];

        assertThatThrownBy(() -> virtualMemory.read(VA + 2 * PAGE_4K - 8, dst, 0, 16))
                .isInstanceOfSatisfying(TranslationException.class,
                        e -> assertThat(e.reason()).isEqualTo(TranslationException.Reason.NOT_PRESENT));
        assertThat(dst).containsOnly(0);
    }

    @Test
    void read_physicallyAdjacentPages_fetchedAsOneRange() throws Exception {
        tables.map(VA + 2 * PAGE_4K, SECOND_FRAME + PAGE_4K, PAGE_4K);
        memory.write(SECOND_FRAME + PAGE_4K - 1, bytes("xy"));
        long readsBefore = memory.reads();

        assertThat(virtualMemory.read(VA + 2 * PAGE_4K - 1, 2)).isEqualTo(bytes("xy"));
        assertThat(memory.reads() - readsBefore).isLessThanOrEqualTo(2 * 4 + 1);
    }

    @Test
    void read_largeSpanOver2MiBPage_translatesEveryPage() throws Exception {
        long kernel = 0xFFFF_8880_0000_0000L;
        tables.map(kernel, 0x80_0000, PAGE_2M);
        memory.write(0x80_0000 + 0x1FFF, bytes("Z"));

        byte[] span = virtualMemory.read(kernel, 3 * (int) PAGE_4K);

        assertThat(span[0x1FFF]).isEqualTo((byte) 'Z');
    }

    @Test
    void read_zeroLength_touchesNothing() throws Exception {
        long readsBefore = memory.reads();

        virtualMemory.read(0xDEAD_0000_0000_0000L, new byte[0], 0, 0);

        assertThat(memory.reads()).isEqualTo(readsBefore);
    }

    @Test
    void readLong_isLittleEndian() throws Exception {
        memory.writeLong(FIRST_FRAME + 0x40, 0x0102_0304_0506_0708L);

        assertThat(virtualMemory.readLong(VA + 0x40)).isEqualTo(0x0102_0304_0506_0708L);
        assertThat(virtualMemory.readInt(VA + 0x40)).isEqualTo(0x0506_0708);
        assertThat(virtualMemory.readShort(VA + 0x40)).isEqualTo((short) 0x0708);
        assertThat(virtualMemory.readByte(VA + 0x47)).isEqualTo((byte) 0x01);
    }

    @Test
    void readLong_crossingPageBoundary_assemblesBothPages() throws Exception {
        memory.write(FIRST_FRAME + 0xFFC, new byte[] {0x08, 0x07, 0x06, 0x05});
        memory.write(SECOND_FRAME, new byte[] {0x04, 0x03, 0x02, (byte) 0x81});

        assertThat(virtualMemory.readLong(VA + 0xFFC)).isEqualTo(0x8102_0304_0506_0708L);
        assertThat(virtualMemory.readInt(VA + 0xFFE)).isEqualTo(0x0304_0506);
        assertThat(virtualMemory.readShort(VA + 0xFFF)).isEqualTo((short) 0x0405);
    }

    @Test
    void readNearEndOfLastMappedPage_doesNotTouchTheUnmappedPage() throws Exception {
        memory.write(SECOND_FRAME + 0xFFC, new byte[] {1, 2, 3, 4});

        assertThat(virtualMemory.readInt(VA + 2 * PAGE_4K - 4)).isEqualTo(0x0403_0201);
        assertThat(virtualMemory.readByte(VA + 2 * PAGE_4K - 1)).isEqualTo((byte) 4);
        assertThatThrownBy(() -> virtualMemory.readLong(VA + 2 * PAGE_4K - 4)).isInstanceOf(TranslationException.class);
    }

    @Test
    void readCString_stopsAtNul() throws Exception {
        memory.write(FIRST_FRAME + 0x100, bytes("systemd\0garbage"));

        assertThat(virtualMemory.readCString(VA + 0x100, 16)).isEqualTo("systemd");
    }

    @Test
    void readCString_noNulWithinMaxLength_returnsMaxLengthBytes() throws Exception {
        memory.write(FIRST_FRAME, bytes("0123456789"));

        assertThat(virtualMemory.readCString(VA, 4)).isEqualTo("0123");
        assertThat(virtualMemory.readCString(VA, 0)).isEmpty();
    }

    @Test
    void readCString_crossingIntoMappedPage_continues() throws Exception {
        memory.write(FIRST_FRAME + 0xFFE, bytes("ab"));
        memory.write(SECOND_FRAME, bytes("cd\0"));

        assertThat(virtualMemory.readCString(VA + 0xFFE, 4096)).isEqualTo("abcd");
    }

    @Test
    void readCString_longerThanOneChunk_readsItAll() throws Exception {
        String name = "x".repeat(1000);
        memory.write(FIRST_FRAME + 0xA00, bytes(name + "\0"));

        assertThat(virtualMemory.readCString(VA + 0xA00, 5000)).isEqualTo(name);
    }

    @Test
    void readCString_nulJustBeforeUnmappedPage_succeeds() throws Exception {
        memory.write(SECOND_FRAME + 0xFFD, bytes("ok\0"));

        assertThat(virtualMemory.readCString(VA + 2 * PAGE_4K - 3, 4096)).isEqualTo("ok");
    }

    @Test
    void readCString_runningIntoUnmappedPage_throws() throws Exception {
        memory.write(SECOND_FRAME + 0xFFE, bytes("no"));

        assertThatThrownBy(() -> virtualMemory.readCString(VA + 2 * PAGE_4K - 2, 4096))
                .isInstanceOf(TranslationException.class);
    }

    @Test
    void readCString_malformedUtf8_decodesLeniently() throws Exception {
        memory.write(FIRST_FRAME, new byte[] {'a', (byte) 0xC3, (byte) 0xA9, (byte) 0xFF, 'b', 0});

        assertThat(virtualMemory.readCString(VA, 16)).isEqualTo("a\u00e9\ufffdb");
    }

    @Test
    void root_returnsTheCr3AsGiven() {
        long cr3 = tables.root() | 0x801;

        assertThat(new VirtualMemory(new PageTableWalker(memory, PagingMode.FOUR_LEVEL), cr3).root()).isEqualTo(cr3);
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.ISO_8859_1);
    }
}
