package io.veggur.vmi.symbols.kallsyms;

import io.veggur.protocol.MemoryRegion;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;

/**
 * Finds the 20-byte run {@code "0\0" "1\0" ... "9\0"} (the digit tokens of a kallsyms token table) in all guest RAM,
 * in ascending address order. RAM is copied in 4 MiB chunks into one reused buffer and probed at every 16-byte
 * boundary: any run has such a boundary among its first 17 bytes, where 4 bytes read digit, NUL, digit, NUL or NUL,
 * digit, NUL, digit, which also tells where the run would start. Only probes that look like that are compared in
 * full. (Plain byte loads: the loop runs interpreted until the JIT gets to it.)
 */
final class DigitRunScanner {
    static final int RUN_LENGTH = 20;
    private static final int PROBE_STRIDE = 16;
    private static final int CHUNK = 4 << 20;
    /** A run that starts in a chunk ends in it or in this overlap. */
    private static final int OVERLAP = 32;

    private final PhysicalMemory memory;
    private final List<MemoryRegion> regions;
    private final byte[] buffer = new byte[CHUNK + OVERLAP];
    private int region = -1;
    private long chunk;          // guest-physical address of buffer[0]
    private int filled;          // valid bytes in buffer
    private int next;            // buffer index of the next probe (16-aligned in guest-physical terms)
    private long lastRun = -1;
    private long scanned;
    private final boolean skipUntouched;
    private long skipped;

    /** @param skipUntouched skip chunks the memory says hold only zeros (see PhysicalMemory#mayContainData) */
    DigitRunScanner(PhysicalMemory memory, boolean skipUntouched) {
        this.memory = memory;
        this.regions = memory.memoryMap().regions();
        this.skipUntouched = skipUntouched;
    }

    /** Bytes of RAM skipped as never touched. */
    long skipped() {
        return skipped;
    }

    /** Bytes of RAM scanned so far. */
    long scanned() {
        return scanned;
    }

    /** Guest-physical address of the next run, or -1 when all RAM has been scanned. */
    long next() throws IOException {
        while (true) {
            long run = nextInChunk();
            if (run >= 0) {
                return run;
            }
            if (!advance()) {
                return -1;
            }
        }
    }

    private long nextInChunk() {
        int owned = (int) Math.min(CHUNK, filled);      // runs starting at or after this belong to the next chunk
        byte[] b = buffer;
        for (int i = next; i + 3 < filled; i += PROBE_STRIDE) {
            int start;
            if (b[i + 1] == 0 && b[i + 3] == 0 && b[i] >= '0' && b[i] <= '9') {
                start = i - 2 * (b[i] - '0');
            } else if (b[i] == 0 && b[i + 2] == 0 && b[i + 1] >= '0' && b[i + 1] <= '9') {
                start = i + 1 - 2 * (b[i + 1] - '0');
            } else {
                continue;
            }
            if (start >= 0 && start < owned && start + RUN_LENGTH <= filled && chunk + start != lastRun
                    && isRun(start)) {
                next = i + PROBE_STRIDE;
                lastRun = chunk + start;
                return lastRun;
            }
        }
        next = filled;
        return -1;
    }

    private boolean isRun(int start) {
        for (int d = 0; d < 10; d++) {
            if (buffer[start + 2 * d] != '0' + d || buffer[start + 2 * d + 1] != 0) {
                return false;
            }
        }
        return true;
    }

    /** Loads the next chunk; false when all regions are done. */
    private boolean advance() throws IOException {
        long from = region < 0 ? -1 : chunk + Math.min(CHUNK, filled);
        if (region < 0 || from >= regions.get(region).end()) {
            if (++region >= regions.size()) {
                return false;
            }
            from = regions.get(region).guestPhysical();
        }
        long end = regions.get(region).end();
        filled = (int) Math.min(buffer.length, end - from);
        chunk = from;
        int owned = Math.min(CHUNK, filled);
        if (skipUntouched && !memory.mayContainData(from, owned)) {
            // Only zeros: no run starts here, and one crossing into here was read with the previous chunk's overlap.
            skipped += owned;
            next = filled;
            return true;
        }
        if (skipUntouched && filled > owned && !memory.mayContainData(from + owned, filled - owned)) {
            // Reading the overlap would touch (and so allocate) the next, untouched chunk: it is zeros.
            memory.read(from, buffer, 0, owned);
            Arrays.fill(buffer, owned, filled, (byte) 0);
        } else {
            memory.read(from, buffer, 0, filled);
        }
        scanned += owned;
        next = (int) (-from & (PROBE_STRIDE - 1));
        return true;
    }
}
