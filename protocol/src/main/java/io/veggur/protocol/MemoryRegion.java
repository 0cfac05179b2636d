package io.veggur.protocol;

/**
 * One contiguous run of guest-physical RAM and where it lives in the RAM backing (the shared file or granted fd).
 *
 * @param guestPhysical first guest-physical address of the run
 * @param size          length in bytes, positive
 * @param backingOffset offset of {@code guestPhysical} within the RAM backing
 */
public record MemoryRegion(long guestPhysical, long size, long backingOffset) {
    public MemoryRegion {
        if (size <= 0 || guestPhysical < 0 || backingOffset < 0 || guestPhysical + size < guestPhysical) {
            throw new IllegalArgumentException("invalid memory region gpa=0x%x size=0x%x offset=0x%x"
                    .formatted(guestPhysical, size, backingOffset));
        }
    }

    public long end() {
        return guestPhysical + size;
    }

    public boolean contains(long address, long length) {
        return address >= guestPhysical && length >= 0 && address - guestPhysical <= size - length;
    }
}
