package io.veggur.vmi.symbols.kallsyms;

import java.util.Optional;
import java.util.OptionalLong;

/**
 * The running kernel's own symbol table (what /proc/kallsyms shows root for the core kernel, without modules), and
 * where its image is in guest-physical memory. Immutable and thread-safe.
 *
 * <p>Addresses are runtime virtual addresses, KASLR applied. Symbols are in kallsyms order, ascending by address.
 * Per-CPU variables (type 'A' on x86-64 until 6.15) have their offset into a CPU's per-CPU area as address, not a
 * kernel-image address: {@link #symbolAt} does not return them and {@link #imagePhysical} rejects them. A name can
 * occur more than once (static symbols of different files); lookups by name return the first, as the kernel's own
 * kallsyms_lookup_name does.
 */
public final class KernelSymbols {
    /** The default link address of _text: __START_KERNEL_map + CONFIG_PHYSICAL_START (16 MiB). */
    public static final long DEFAULT_TEXT = 0xffff_ffff_8100_0000L;

    /** A kernel symbol: nm's type letter (T text, D data, R read-only, B bss, A absolute/per-CPU; lower case local). */
    public record Symbol(String name, char type, long address) {
        @Override
        public String toString() {
            return "%016x %c %s".formatted(address, type, name);
        }
    }

    private final SymbolNames names;
    private final byte[] types;
    private final long[] addresses;
    private final int firstImageSymbol;
    private final long text;
    private final long physBase;
    private final Layout layout;
    private final boolean absolutePercpu;
    private final boolean bigLengths;

    KernelSymbols(KallsymsTables tables, KallsymsTables.Decoded decoded, long physBase) {
        this.names = decoded.names();
        this.types = decoded.types();
        this.addresses = tables.addresses();
        this.physBase = physBase;
        this.layout = tables.layout();
        this.absolutePercpu = tables.absolutePercpu();
        this.bigLengths = tables.bigLengths();
        int image = 0;
        while (image < addresses.length && !KallsymsLocator.inKernelImage(addresses[image])) {
            image++;
        }
        this.firstImageSymbol = image;
        this.text = addresses[names.first("_text")];
    }

    public int count() {
        return addresses.length;
    }

    public Optional<Symbol> symbol(String name) {
        int index = names.first(name);
        return index < 0 ? Optional.empty() : Optional.of(symbol(index));
    }

    public OptionalLong address(String name) {
        int index = names.first(name);
        return index < 0 ? OptionalLong.empty() : OptionalLong.of(addresses[index]);
    }

    /**
     * The symbol a kernel-image address belongs to: the first of those with the greatest address not above it. Empty
     * below the image's first symbol and above its last one (usually _end).
     */
    public Optional<Symbol> symbolAt(long address) {
        int last = addresses.length - 1;
        if (firstImageSymbol > last || Long.compareUnsigned(address, addresses[firstImageSymbol]) < 0
                || Long.compareUnsigned(address, addresses[last]) > 0) {
            return Optional.empty();
        }
        int low = firstImageSymbol;
        int high = last;
        while (low < high) {
            int middle = (low + high + 1) >>> 1;
            if (Long.compareUnsigned(addresses[middle], address) <= 0) {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        while (low > firstImageSymbol && addresses[low - 1] == addresses[low]) {
            low--;
        }
        return Optional.of(symbol(low));
    }

    /**
     * Guest-physical address of a kernel-image virtual address (text, data, bss: {@code [__START_KERNEL_map,
     * __START_KERNEL_map + 1 GiB)}); the image is mapped linearly, so this needs no page tables.
     *
     * @throws IllegalArgumentException for an address outside the kernel image mapping
     */
    public long imagePhysical(long kernelVirtualAddress) {
        if (!KallsymsLocator.inKernelImage(kernelVirtualAddress)) {
            throw new IllegalArgumentException("0x%x is not a kernel-image address".formatted(kernelVirtualAddress));
        }
        return kernelVirtualAddress - KernelImage.START_KERNEL_MAP + physBase;
    }

    /**
     * The kernel-image virtual address through which code at a guest-physical address runs: the inverse of
     * {@link #imagePhysical}, for addresses between _text and the image's last symbol.
     *
     * @throws IllegalArgumentException for a physical address outside the kernel image
     */
    public long imageVirtual(long physicalAddress) {
        long virtual = physicalAddress - physBase + KernelImage.START_KERNEL_MAP;
        if (Long.compareUnsigned(virtual, text) < 0 || symbolAt(virtual).isEmpty()) {
            throw new IllegalArgumentException(("guest-physical 0x%x is not in the kernel image; breakpoints at other"
                    + " physical addresses need the virtual address the code runs at").formatted(physicalAddress));
        }
        return virtual;
    }

    /** Guest-physical address of _text, the start of the kernel image. */
    public long textPhysical() {
        return imagePhysical(text);
    }

    /** The kernel's phys_base: {@code imagePhysical(va) == va - 0xffffffff80000000 + physBase()} (may be negative). */
    public long physBase() {
        return physBase;
    }

    /** How far KASLR moved the image: {@code _text - }{@link #DEFAULT_TEXT}; 0 with nokaslr. */
    public long kaslrSlide() {
        return text - DEFAULT_TEXT;
    }

    Layout layout() {
        return layout;
    }

    boolean absolutePercpu() {
        return absolutePercpu;
    }

    boolean bigLengths() {
        return bigLengths;
    }

    private Symbol symbol(int index) {
        return new Symbol(names.name(index), (char) types[index], addresses[index]);
    }

    @Override
    public String toString() {
        return "KernelSymbols[%d symbols, kallsyms layout %s%s, _text=0x%x at guest-physical 0x%x]".formatted(count(),
                layout, absolutePercpu ? " with absolute per-CPU addresses" : "", text, textPhysical());
    }
}
