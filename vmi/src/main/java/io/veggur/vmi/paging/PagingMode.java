package io.veggur.vmi.paging;

/**
 * The two x86-64 long-mode paging modes. Four-level paging translates 48-bit virtual addresses through PML4, PDPT, PD
 * and PT; five-level paging (CR4.LA57) puts a PML5 on top and translates 57-bit addresses. Each level consumes 9 bits
 * of the address above the 12-bit page offset.
 *
 * <p>An address is canonical when every bit above the top translated bit is a copy of that bit (sign extension). The
 * CPU faults on any other address before it reads a page table, and so does {@link PageTableWalker}.
 */
public enum PagingMode {
    FOUR_LEVEL(4),
    FIVE_LEVEL(5);

    private static final long CR4_LA57 = 1L << 12;

    private final int levels;
    private final int virtualAddressBits;

    PagingMode(int levels) {
        this.levels = levels;
        this.virtualAddressBits = 12 + 9 * levels;
    }

    /** The mode selected by a long-mode CR4 value (CR0.PG, CR4.PAE and EFER.LMA are assumed set). */
    public static PagingMode fromCr4(long cr4) {
        return (cr4 & CR4_LA57) != 0 ? FIVE_LEVEL : FOUR_LEVEL;
    }

    /** Number of page-table levels a walk reads: 4 or 5. */
    public int levels() {
        return levels;
    }

    /** Number of translated virtual-address bits: 48 or 57. */
    public int virtualAddressBits() {
        return virtualAddressBits;
    }

    /** True when bits 63..N-1 of {@code virtualAddress} are all equal, N being {@link #virtualAddressBits()}. */
    public boolean isCanonical(long virtualAddress) {
        int unused = 64 - virtualAddressBits;
        return (virtualAddress << unused >> unused) == virtualAddress;
    }
}
