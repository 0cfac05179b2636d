package io.veggur.vmi.paging;

import java.io.IOException;

/**
 * A virtual address has no usable translation. {@link #reason()} says why and {@link #level()} where: levels are
 * numbered as the walk meets them from the bottom, 1 = PTE, 2 = PDE, 3 = PDPTE, 4 = PML4E, 5 = PML5E, and 0 when no
 * entry was involved (a non-canonical address).
 */
public final class TranslationException extends IOException {
    public enum Reason {
        /** The address is not sign-extended from the top translated bit; no table was read. */
        NON_CANONICAL,
        /** The entry at {@link #level()} has its present bit clear. */
        NOT_PRESENT,
        /** The entry at {@link #level()} sets a bit the CPU would fault on (PS at PML5E/PML4E, or non-zero low address
         * bits of a 2 MiB or 1 GiB page). */
        RESERVED_BIT,
        /** The table holding the entry at {@link #level()} is not guest RAM, or that entry maps a page not in RAM. */
        OUTSIDE_RAM
    }

    private static final String[] ENTRY_NAMES = {"", "PTE", "PDE", "PDPTE", "PML4E", "PML5E"};

    private final Reason reason;
    private final int level;
    private final long virtualAddress;

    private TranslationException(Reason reason, int level, long virtualAddress, String message, Throwable cause) {
        super("virtual address 0x%x: %s".formatted(virtualAddress, message), cause);
        this.reason = reason;
        this.level = level;
        this.virtualAddress = virtualAddress;
    }

    static TranslationException nonCanonical(long virtualAddress, PagingMode mode) {
        return new TranslationException(Reason.NON_CANONICAL, 0, virtualAddress,
                "not canonical for %d-bit virtual addresses".formatted(mode.virtualAddressBits()), null);
    }

    static TranslationException notPresent(long virtualAddress, int level, long entryAddress, long entry, long root) {
        return new TranslationException(Reason.NOT_PRESENT, level, virtualAddress,
                "%s 0x%x at guest-physical 0x%x is not present (root 0x%x)"
                        .formatted(ENTRY_NAMES[level], entry, entryAddress, root), null);
    }

    static TranslationException reservedBit(long virtualAddress, int level, long entryAddress, long entry, long root) {
        return new TranslationException(Reason.RESERVED_BIT, level, virtualAddress,
                "%s 0x%x at guest-physical 0x%x sets reserved bits (root 0x%x)"
                        .formatted(ENTRY_NAMES[level], entry, entryAddress, root), null);
    }

    static TranslationException tableOutsideRam(long virtualAddress, int level, long entryAddress, long root,
                                                 Throwable cause) {
        return new TranslationException(Reason.OUTSIDE_RAM, level, virtualAddress,
                "%s at guest-physical 0x%x is outside guest RAM (root 0x%x)"
                        .formatted(ENTRY_NAMES[level], entryAddress, root), cause);
    }

    static TranslationException pageOutsideRam(long virtualAddress, int level, long pageBase, long pageSize,
                                               long root) {
        return new TranslationException(Reason.OUTSIDE_RAM, level, virtualAddress,
                "%s maps the %d KiB page at guest-physical 0x%x, which is not guest RAM (root 0x%x)"
                        .formatted(ENTRY_NAMES[level], pageSize >> 10, pageBase, root), null);
    }

    public Reason reason() {
        return reason;
    }

    /** 1 = PTE ... 5 = PML5E; 0 for {@link Reason#NON_CANONICAL}. */
    public int level() {
        return level;
    }

    public long virtualAddress() {
        return virtualAddress;
    }
}
