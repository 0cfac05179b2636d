package io.veggur.host.qemu;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.MemoryRegion;
import java.io.IOException;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the guest-physical RAM layout from QEMU itself ({@code info mtree}) rather than re-deriving the machine
 * type's split rules: the {@code ram-below-4g} and {@code ram-above-4g} aliases say where each part of the RAM
 * backend appears in guest-physical space.
 */
public final class QemuMemoryMap {
    private static final Pattern RAM_ALIAS = Pattern.compile(
            "([0-9a-f]+)-([0-9a-f]+) \\(prio -?\\d+, ram\\): alias ram-(?:below|above)-4g @\\S+ ([0-9a-f]+)-([0-9a-f]+)");

    private QemuMemoryMap() {}

    public static MemoryMap parse(String mtree, long ramBytes) throws IOException {
        TreeMap<Long, MemoryRegion> regions = new TreeMap<>();
        Matcher m = RAM_ALIAS.matcher(mtree);
        while (m.find()) {
            long start = Long.parseUnsignedLong(m.group(1), 16);
            long end = Long.parseUnsignedLong(m.group(2), 16);
            long offset = Long.parseUnsignedLong(m.group(3), 16);
            regions.putIfAbsent(start, new MemoryRegion(start, end - start + 1, offset));
        }
        if (regions.isEmpty()) {
            throw new IOException("QEMU's memory tree shows no RAM aliases (ram-below-4g/ram-above-4g)");
        }
        MemoryMap map = new MemoryMap(regions.values().stream().toList());
        if (map.totalSize() != ramBytes || map.backingSize() != ramBytes) {
            throw new IOException("QEMU's memory tree covers " + map.totalSize() + " bytes of RAM, expected " + ramBytes);
        }
        return map;
    }
}
