package io.veggur.vmi.symbols.kallsyms;

import io.veggur.protocol.MemoryRegion;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;

/**
 * Copies guest-physical ranges for the table locator. Each copy is clipped to the RAM region that holds an anchor
 * address (the kernel image is physically contiguous, so its tables never span two regions), and all copies together
 * draw on one byte budget: memory full of look-alike tables must not keep a search busy without end.
 */
final class WindowReader {
    /** Larger than every kallsyms array of a real kernel (a few MiB), small enough for one byte array. */
    static final int MAX_WINDOW = 96 << 20;
    private static final int PIECE = 1 << 20;

    private final PhysicalMemory memory;
    private final long budget;
    private long spent;

    WindowReader(PhysicalMemory memory, long budget) {
        this.memory = memory;
        this.budget = budget;
    }

    /**
     * Copies {@code [from, to)} clipped to the RAM region holding {@code anchor}, and to {@link #MAX_WINDOW} bytes from
     * its start; the window is empty when nothing of the range is in that region.
     */
    PhysicalWindow read(long anchor, long from, long to) throws KallsymsException {
        MemoryRegion region = memory.memoryMap().regionOf(anchor, 1);
        if (region == null) {
            return new PhysicalWindow(anchor, new byte[0]);
        }
        long start = Math.max(from, region.guestPhysical());
        long end = Math.min(Math.min(to, region.end()), start + MAX_WINDOW);
        if (end <= start) {
            return new PhysicalWindow(anchor, new byte[0]);
        }
        int length = (int) (end - start);
        if (spent + length > budget) {
            throw new KallsymsException("gave up after copying %d MiB of guest memory to check kallsyms look-alikes"
                    .formatted(spent >> 20));
        }
        spent += length;
        byte[] bytes = new byte[length];
        try {
            // Pieces the memory says the guest never touched are zeros: leave them so instead of reading them, which
            // on a sparse RAM backing would make the host allocate them (look-alikes sit near untouched RAM).
            for (int done = 0; done < length; done += PIECE) {
                int piece = Math.min(PIECE, length - done);
                if (memory.mayContainData(start + done, piece)) {
                    memory.read(start + done, bytes, done, piece);
                }
            }
        } catch (IOException e) {
            throw new KallsymsException("reading guest-physical 0x%x+0x%x failed: %s"
                    .formatted(start, length, e.getMessage()), e);
        }
        return new PhysicalWindow(start, bytes);
    }
}
