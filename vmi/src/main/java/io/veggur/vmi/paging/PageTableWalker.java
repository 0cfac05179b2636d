package io.veggur.vmi.paging;

import io.veggur.protocol.MemoryMap;
import io.veggur.vmi.memory.OutOfRangeException;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;

/**
 * Translates x86-64 virtual addresses to guest-physical ones by walking the guest's page tables as the MMU does, and
 * caches the results as a TLB does.
 *
 * <p>Walk. The root argument is a CR3 value: the top table is at bits 12..51; the PCID or PWT/PCD flags (bits 0..11),
 * the no-flush bit 63 and the LAM bits 61..62 are ignored. From the top level down, 9 bits of the virtual address
 * index the table; the 8-byte entry must have its present bit (0) set, and its bits 12..51 locate the next table. A
 * PDPTE or PDE with PS (bit 7) maps a 1 GiB or 2 MiB page; a PTE always maps a 4 KiB page (its bit 7 is PAT, and so
 * is bit 12 of a large-page entry). Bits 52..63 of an entry (software bits, protection key, XD) are never address
 * bits. The loop runs once per level, so a walk reads at most five entries whatever the tables hold: cyclic or
 * self-referencing tables cannot make it loop, and a successful walk allocates nothing.
 *
 * <p>Failures are {@link TranslationException}s, never unchecked exceptions: a non-canonical address, a non-present
 * entry, a bit the CPU reserves, and an entry that points outside guest RAM. The last is
 * {@link TranslationException.Reason#OUTSIDE_RAM} (with the memory's {@link OutOfRangeException} as cause when a
 * table could not be read), not a bare OutOfRangeException: the page tables are broken, not the caller's range. Other
 * IOExceptions come from the memory itself (a lost connection). Not modelled: MAXPHYADDR reserved bits, EFER.NXE,
 * CR0.WP, SMEP/SMAP, protection keys, accessed/dirty bits.
 *
 * <p>Invariant of every successful translation: the whole 4 KiB page holding the returned address is guest RAM, so a
 * read of up to the rest of that page succeeds. A large page only partly in RAM (a 1 GiB page over a PCI hole) still
 * translates where it is RAM, but is not cached.
 *
 * <p>Cache. Successful translations of pages wholly in RAM are cached per (root table, virtual page) in a bounded
 * {@link TranslationCache}. Consistency is explicit, as with a real TLB: after the guest changes its page tables,
 * {@link #translate} and {@link #walk} keep answering from the cache until {@link #invalidate()} or
 * {@link #invalidate(long)}. Callers invalidate when the guest may have changed (after resuming it, or at the start of
 * each pass over a running guest). A translation that fails is never cached.
 *
 * <p>Thread-safe: the fields are final and the cache is thread-safe; concurrent walks share nothing else.
 */
public final class PageTableWalker {
    /** Bits 12..51: the address field of CR3 and of every paging entry. */
    static final long ADDRESS_MASK = 0x000F_FFFF_FFFF_F000L;

    private static final long PRESENT = 1L;
    private static final long WRITABLE = 1L << 1;
    private static final long USER = 1L << 2;
    private static final long PAGE_SIZE = 1L << 7;
    private static final long LARGE_PAGE_PAT = 1L << 12;
    private static final long PTI_USER_PGD = 1L << 12;

    // A packed translation, as cached: page base (bits 12..51) | WRITABLE | USER | PACKED_NX | leaf level << 3.
    // The level is 1..3, so a packed translation is never 0.
    private static final long PACKED_NX = 1L << 5;
    private static final int PACKED_LEVEL_SHIFT = 3;

    private final PhysicalMemory memory;
    private final MemoryMap ram;
    private final PagingMode mode;
    private final TranslationCache cache;

    public PageTableWalker(PhysicalMemory memory, PagingMode mode) {
        this(memory, mode, TranslationCache.DEFAULT_SLOTS);
    }

    PageTableWalker(PhysicalMemory memory, PagingMode mode, int cacheSlots) {
        this.memory = memory;
        this.ram = memory.memoryMap();
        this.mode = mode;
        this.cache = new TranslationCache(cacheSlots);
    }

    /**
     * The kernel's root for a CR3 read while a vCPU may be in user mode. With page-table isolation (PTI) Linux gives
     * each address space an 8 KiB-aligned pair of PGDs, the kernel's first and the user's (kernel + 4 KiB) second,
     * and runs user mode on the second; clearing bit 12 gives the kernel PGD, which maps user space too. Without PTI
     * a PGD is only 4 KiB-aligned, so bit 12 is an address bit and the CR3 is returned as is.
     */
    public static long kernelRoot(long cr3, boolean pti) {
        return pti ? cr3 & ~PTI_USER_PGD : cr3;
    }

    public PagingMode mode() {
        return mode;
    }

    PhysicalMemory memory() {
        return memory;
    }

    /** The guest-physical address {@code virtualAddress} maps to in the address space of CR3 value {@code root}. */
    public long translate(long root, long virtualAddress) throws IOException {
        long packed = resolve(root, virtualAddress);
        return (packed & ADDRESS_MASK) | (virtualAddress & (pageSize(packed) - 1));
    }

    /** As {@link #translate}, with the page size and effective permissions. */
    public Translation walk(long root, long virtualAddress) throws IOException {
        long packed = resolve(root, virtualAddress);
        long pageSize = pageSize(packed);
        return new Translation((packed & ADDRESS_MASK) | (virtualAddress & (pageSize - 1)), pageSize,
                (packed & USER) != 0, (packed & WRITABLE) != 0, (packed & PACKED_NX) != 0);
    }

    /** Forgets every cached translation, and whatever the memory below caches (a remote page cache). */
    public void invalidate() {
        cache.invalidate();
        memory.invalidate();
    }

    /** Forgets the cached translations of one address space; {@code root} is a CR3 value, its flag bits ignored. */
    public void invalidate(long root) {
        cache.invalidate(root & ADDRESS_MASK);
    }

    TranslationCache cache() {
        return cache;
    }

    static int pageShift(int level) {
        return 12 + 9 * (level - 1);
    }

    private static long pageSize(long packed) {
        return 1L << pageShift((int) (packed >>> PACKED_LEVEL_SHIFT) & 3);
    }

    private long resolve(long root, long virtualAddress) throws IOException {
        if (!mode.isCanonical(virtualAddress)) {
            throw TranslationException.nonCanonical(virtualAddress, mode);
        }
        long table = root & ADDRESS_MASK;
        long packed = cache.lookup(table, virtualAddress);
        return packed != 0 ? packed : walkTables(table, virtualAddress);
    }

    private long walkTables(long topTable, long virtualAddress) throws IOException {
        long epoch = cache.epoch();
        long table = topTable;
        long allEntries = -1L;
        long anyEntry = 0;
        for (int level = mode.levels(); level >= 1; level--) {
            int shift = pageShift(level);
            long entryAddress = table | ((virtualAddress >>> shift) & 0x1FF) << 3;
            long entry = readEntry(entryAddress, level, virtualAddress, topTable);
            if ((entry & PRESENT) == 0) {
                throw TranslationException.notPresent(virtualAddress, level, entryAddress, entry, topTable);
            }
            allEntries &= entry;
            anyEntry |= entry;
            if (level == 1 || (entry & PAGE_SIZE) != 0) {
                long pageMask = (1L << shift) - 1;
                if (level > 3 || (level > 1 && (entry & ADDRESS_MASK & pageMask & ~LARGE_PAGE_PAT) != 0)) {
                    throw TranslationException.reservedBit(virtualAddress, level, entryAddress, entry, topTable);
                }
                long pageBase = entry & ADDRESS_MASK & ~pageMask;
                long packed = pageBase | (allEntries & (WRITABLE | USER)) | (anyEntry < 0 ? PACKED_NX : 0)
                        | (long) level << PACKED_LEVEL_SHIFT;
                if (ram.regionOf(pageBase, pageMask + 1) != null) {
                    cache.insert(topTable, virtualAddress, level, packed, epoch);
                } else if (ram.regionOf((pageBase | (virtualAddress & pageMask)) & -4096L, 4096) == null) {
                    throw TranslationException.pageOutsideRam(virtualAddress, level, pageBase, pageMask + 1, topTable);
                }
                return packed;
            }
            table = entry & ADDRESS_MASK;
        }
        throw new AssertionError("a PTE always maps a page");
    }

    private long readEntry(long entryAddress, int level, long virtualAddress, long topTable) throws IOException {
        try {
            return memory.readLong(entryAddress);
        } catch (OutOfRangeException e) {
            throw TranslationException.tableOutsideRam(virtualAddress, level, entryAddress, topTable, e);
        }
    }
}
