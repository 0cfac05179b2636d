package io.veggur.protocol;

import java.util.Comparator;
import java.util.List;

/**
 * The guest-physical memory map: sorted, non-overlapping RAM regions. On q35 a guest with more than ~2.75 GiB has two
 * regions, the second starting at 4 GiB, both packed one after the other in the RAM backing.
 */
public record MemoryMap(List<MemoryRegion> regions) {
    /** A bound on what a peer may announce; real machines have a handful of regions. */
    public static final int MAX_REGIONS = 64;

    public MemoryMap {
        regions = regions.stream().sorted(Comparator.comparingLong(MemoryRegion::guestPhysical)).toList();
        if (regions.isEmpty() || regions.size() > MAX_REGIONS) {
            throw new IllegalArgumentException("a memory map needs 1.." + MAX_REGIONS + " regions, got " + regions.size());
        }
        for (int i = 1; i < regions.size(); i++) {
            if (regions.get(i).guestPhysical() < regions.get(i - 1).end()) {
                throw new IllegalArgumentException("overlapping memory regions " + regions.get(i - 1) + " and " + regions.get(i));
            }
        }
    }

    /** A single region at guest-physical 0, as for a raw memory image. */
    public static MemoryMap flat(long size) {
        return new MemoryMap(List.of(new MemoryRegion(0, size, 0)));
    }

    /** The region holding all of {@code [address, address+length)}, or null when the range is not entirely RAM. */
    public MemoryRegion regionOf(long address, long length) {
        for (MemoryRegion region : regions) {
            if (region.contains(address, length)) {
                return region;
            }
        }
        return null;
    }

    /** Offset in the backing of a range that lies inside one region, or -1. */
    public long backingOffset(long address, long length) {
        MemoryRegion region = regionOf(address, length);
        return region == null ? -1 : region.backingOffset() + (address - region.guestPhysical());
    }

    /** Total RAM bytes. */
    public long totalSize() {
        return regions.stream().mapToLong(MemoryRegion::size).sum();
    }

    /** Bytes of backing needed to hold every region. */
    public long backingSize() {
        return regions.stream().mapToLong(r -> r.backingOffset() + r.size()).max().orElse(0);
    }
}
