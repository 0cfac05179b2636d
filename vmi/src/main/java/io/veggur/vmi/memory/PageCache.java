package io.veggur.vmi.memory;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.MemoryRegion;
import io.veggur.protocol.Request.PhysicalRange;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A bounded page cache in front of a remote {@link PhysicalMemory}, for when every read costs a round trip (TCP, TLS,
 * a serial port): reads are served from cached 4 KiB pages, and whatever pages a read (or a batch) misses are fetched
 * together in one {@link PhysicalMemory#readBatch}, each miss extended to the aligned block of
 * {@code readAheadPages} pages around it (within its RAM region), since a kernel object or a page-table walk usually
 * wants the neighbours next.
 *
 * <p>Consistency is explicit: a cached page stays until {@link #invalidate} (the session calls it when the VM resumes
 * or stops at a debug event, {@code LinuxKernel.invalidateCaches()} on request) or, so that a long-lived session
 * never serves an old page of a running VM forever, until it is older than {@code maxAgeNanos}. What one walk over a
 * running VM reads may come from slightly different moments, as it would without a cache.
 *
 * <p>Thread-safe (one lock; fetches happen under it, so concurrent readers do not fetch a page twice). Bounded: at
 * most {@code maxPages} pages, least recently used ones go first.
 */
public final class PageCache implements PhysicalMemory {
    public static final int PAGE = 4096;

    private final PhysicalMemory source;
    private final int maxPages;
    private final int readAheadPages;
    private final long maxAgeNanos;
    private final Map<Long, Page> pages;

    private record Page(byte[] bytes, long fetchedAt) {}

    /**
     * @param maxPages       the bound (e.g. 4096 pages = 16 MiB)
     * @param readAheadPages a power of two, 1 for none
     * @param maxAgeNanos    after this, a page is fetched again
     */
    public PageCache(PhysicalMemory source, int maxPages, int readAheadPages, long maxAgeNanos) {
        if (maxPages < readAheadPages || readAheadPages < 1 || Integer.bitCount(readAheadPages) != 1 || maxAgeNanos <= 0) {
            throw new IllegalArgumentException("bad page cache bounds");
        }
        this.source = source;
        this.maxPages = maxPages;
        this.readAheadPages = readAheadPages;
        this.maxAgeNanos = maxAgeNanos;
        this.pages = new LinkedHashMap<>(maxPages * 2, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, Page> eldest) {
                return size() > PageCache.this.maxPages;
            }
        };
    }

    @Override
    public MemoryMap memoryMap() {
        return source.memoryMap();
    }

    /** Forgets every cached page. */
    @Override
    public synchronized void invalidate() {
        pages.clear();
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) throws IOException {
        readBatch(List.of(new PhysicalRange(address, length)), dst, offset);
    }

    @Override
    public void readBatch(List<PhysicalRange> ranges, byte[] dst) throws IOException {
        readBatch(ranges, dst, 0);
    }

    private synchronized void readBatch(List<PhysicalRange> ranges, byte[] dst, int offset) throws IOException {
        long now = System.nanoTime();
        long needed = 0;
        for (PhysicalRange range : ranges) {
            if (memoryMap().regionOf(range.address(), range.length()) == null) {
                throw new OutOfRangeException(range.address(), range.length());
            }
            needed += pageCount(range);
        }
        if (needed > maxPages / 2) {
            // Bigger than the cache is meant for (a scan): straight through, cached pages untouched. A read with an
            // offset is always a single range (see read).
            if (offset != 0) {
                source.read(ranges.getFirst().address(), dst, offset, ranges.getFirst().length());
            } else {
                source.readBatch(ranges, dst);
            }
            return;
        }
        Set<Long> missing = new LinkedHashSet<>();
        for (PhysicalRange range : ranges) {
            for (long page = range.address() & -PAGE; page < range.address() + range.length(); page += PAGE) {
                Page cached = pages.get(page);
                if (cached == null || now - cached.fetchedAt() > maxAgeNanos) {
                    addBlock(page, missing);
                }
            }
        }
        fetch(missing, now);
        int position = offset;
        for (PhysicalRange range : ranges) {
            long address = range.address();
            long end = address + range.length();
            while (address < end) {
                long page = address & -PAGE;
                int piece = (int) Math.min(end - address, page + PAGE - address);
                System.arraycopy(pages.get(page).bytes(), (int) (address - page), dst, position, piece);
                position += piece;
                address += piece;
            }
        }
    }

    /** Adds the missing or stale pages of the read-ahead block around {@code page} that lie in its RAM region. */
    private void addBlock(long page, Set<Long> missing) {
        MemoryRegion region = memoryMap().regionOf(page, PAGE);
        long blockStart = page & -((long) readAheadPages * PAGE);
        for (long candidate = blockStart; candidate < blockStart + (long) readAheadPages * PAGE; candidate += PAGE) {
            if (region != null && candidate >= region.guestPhysical()
                    && candidate + PAGE <= region.guestPhysical() + region.size()
                    && (candidate == page || !pages.containsKey(candidate))) {
                missing.add(candidate);
            }
        }
    }

    private void fetch(Set<Long> wanted, long now) throws IOException {
        if (wanted.isEmpty()) {
            return;
        }
        List<Long> missing = new ArrayList<>(wanted);
        missing.sort(Long::compare);
        List<PhysicalRange> ranges = new ArrayList<>();
        for (long page : missing) {
            PhysicalRange last = ranges.isEmpty() ? null : ranges.getLast();
            if (last != null && last.address() + last.length() == page) {
                ranges.set(ranges.size() - 1, new PhysicalRange(last.address(), last.length() + PAGE));
            } else {
                ranges.add(new PhysicalRange(page, PAGE));
            }
        }
        byte[] bytes = new byte[missing.size() * PAGE];
        source.readBatch(ranges, bytes);
        for (int i = 0; i < missing.size(); i++) {
            byte[] page = new byte[PAGE];
            System.arraycopy(bytes, i * PAGE, page, 0, PAGE);
            pages.put(missing.get(i), new Page(page, now));
        }
    }

    private static long pageCount(PhysicalRange range) {
        long first = range.address() & -PAGE;
        long last = (range.address() + range.length() - 1) & -PAGE;
        return (last - first) / PAGE + 1;
    }

    @Override
    public boolean mayContainData(long address, long length) {
        return source.mayContainData(address, length);
    }

    @Override
    public void close() throws IOException {
        source.close();
    }
}
