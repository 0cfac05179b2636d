package io.veggur.vmi.symbols.kallsyms;

import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.OptionalLong;

/**
 * Where the kernel image is in guest-physical memory. x86-64 maps the image linearly: the image address {@code va} is
 * at physical {@code va - __START_KERNEL_map + phys_base} (the kernel's own __pa_symbol), and phys_base is a multiple
 * of 2 MiB because the physical load address and the KASLR virtual offset are both multiples of CONFIG_PHYSICAL_ALIGN.
 * The token table lies inside the image, so only the few aligned phys_base values that put some image address at the
 * table's physical address are possible; the right one is the one under which linux_banner reads "Linux version "
 * and linux_proc_banner reads "%s version %s" (both in init/version*.c since 2.6).
 */
final class KernelImage {
    static final long START_KERNEL_MAP = KallsymsLocator.KERNEL_IMAGE_START;
    static final long ALIGN = 2 << 20;
    private static final byte[] BANNER = "Linux version ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] PROC_BANNER = "%s version %s".getBytes(StandardCharsets.US_ASCII);

    private KernelImage() {
    }

    /**
     * phys_base for a kernel whose image spans the virtual addresses {@code [low, high]} and holds the byte at
     * guest-physical {@code inside}; empty unless exactly one candidate shows both banners.
     */
    static OptionalLong physBase(PhysicalMemory memory, long inside, long low, long high, long banner, long procBanner)
            throws KallsymsException {
        long first = Math.ceilDiv(inside - (high - START_KERNEL_MAP), ALIGN) * ALIGN;
        long last = inside - (low - START_KERNEL_MAP);
        OptionalLong found = OptionalLong.empty();
        for (long candidate = first; candidate <= last; candidate += ALIGN) {
            if (holds(memory, banner - START_KERNEL_MAP + candidate, BANNER)
                    && holds(memory, procBanner - START_KERNEL_MAP + candidate, PROC_BANNER)) {
                if (found.isPresent()) {
                    return OptionalLong.empty();
                }
                found = OptionalLong.of(candidate);
            }
        }
        return found;
    }

    private static boolean holds(PhysicalMemory memory, long address, byte[] expected) throws KallsymsException {
        if (memory.memoryMap().regionOf(address, expected.length) == null) {
            return false;
        }
        try {
            return Arrays.equals(memory.read(address, expected.length), expected);
        } catch (IOException e) {
            throw new KallsymsException("reading guest-physical 0x%x failed: %s".formatted(address, e.getMessage()), e);
        }
    }
}
