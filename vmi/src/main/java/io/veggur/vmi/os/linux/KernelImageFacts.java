package io.veggur.vmi.os.linux;

import io.veggur.vmi.memory.PhysicalMemory;
import io.veggur.vmi.symbols.kallsyms.KernelSymbols;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * Facts about the x86-64 kernel image mapping. The image is loaded physically contiguous at an address aligned to
 * {@link #PHYSICAL_ALIGN} and mapped linearly at {@code _text}, so an image symbol's physical address is
 * {@code textPhysical + (symbol - _text)}.
 */
final class KernelImageFacts {
    /** Link-time address of {@code _text}; KASLR slides it by multiples of 2 MiB. */
    static final long DEFAULT_TEXT = KernelSymbols.DEFAULT_TEXT;
    /** CONFIG_PHYSICAL_ALIGN of x86-64 distribution kernels, the grain of both KASLR slides. */
    static final long PHYSICAL_ALIGN = 2L << 20;
    /** The virtual slide stays inside the 1 GiB kernel image area. */
    static final long MAX_SLIDE = 1L << 30;
    static final int MAX_BANNER = 512;
    private static final int NT_GNU_BUILD_ID = 3;
    private static final int MAX_NOTES = 1 << 16;

    private KernelImageFacts() {}

    static String readBanner(PhysicalMemory memory, long physical) throws IOException {
        byte[] bytes = memory.read(physical, MAX_BANNER);
        int end = 0;
        while (end < bytes.length && bytes[end] != 0 && bytes[end] != '\n') {
            end++;
        }
        String banner = new String(bytes, 0, end, StandardCharsets.UTF_8);
        if (!banner.startsWith("Linux version ")) {
            throw new IOException("no 'Linux version' banner at physical 0x" + Long.toHexString(physical));
        }
        return banner;
    }

    /** The GNU build id from the image's ELF notes (between __start_notes and __stop_notes), or null. */
    static String readBuildId(PhysicalMemory memory, long notesPhysical, long notesLength) throws IOException {
        if (notesLength <= 0 || notesLength > MAX_NOTES) {
            return null;
        }
        ByteBuffer notes = ByteBuffer.wrap(memory.read(notesPhysical, (int) notesLength)).order(ByteOrder.LITTLE_ENDIAN);
        while (notes.remaining() >= 12) {
            long nameSize = notes.getInt() & 0xffff_ffffL;
            long descSize = notes.getInt() & 0xffff_ffffL;
            int type = notes.getInt();
            long namePadded = (nameSize + 3) & ~3L;
            long descPadded = (descSize + 3) & ~3L;
            if (namePadded + descPadded > notes.remaining()) {
                return null;
            }
            byte[] name = new byte[(int) namePadded];
            notes.get(name);
            byte[] desc = new byte[(int) descPadded];
            notes.get(desc);
            if (type == NT_GNU_BUILD_ID && nameSize == 4 && name[0] == 'G' && name[1] == 'N' && name[2] == 'U') {
                return HexFormat.of().formatHex(desc, 0, (int) descSize);
            }
        }
        return null;
    }
}
