package io.veggur.vmi.paging;

/**
 * The result of translating one virtual address.
 *
 * @param physicalAddress the guest-physical address the virtual address maps to
 * @param pageSize        size of the mapping page: 4 KiB, 2 MiB or 1 GiB
 * @param user            U/S set at every level: user mode may access the page
 * @param writable        R/W set at every level (what CR0.WP, SMAP and protection keys add is not modelled)
 * @param noExecute       XD (bit 63) set at some level; meaningful only when the guest runs with EFER.NXE, as Linux
 *                        does on every CPU that has it
 */
public record Translation(long physicalAddress, long pageSize, boolean user, boolean writable, boolean noExecute) {
    public static final long PAGE_4K = 1L << 12;
    public static final long PAGE_2M = 1L << 21;
    public static final long PAGE_1G = 1L << 30;

    /** Guest-physical address of the first byte of the mapping page. */
    public long pageBase() {
        return physicalAddress & -pageSize;
    }
}
