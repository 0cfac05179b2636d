package io.veggur.vmi.symbols.kallsyms;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.ThreadLocalRandom;

/**
 * All symbol names of a kernel back to back in one byte array, with an open-addressing hash index from each name to
 * its first occurrence. A Debian kernel's 90 000 names take about 2 MB this way instead of 90 000 String objects, and
 * building it is a plain byte loop (a find runs mostly before the JIT has compiled anything). The names come from
 * guest memory, so the hash is keyed with a random seed: a guest cannot pick names that all collide and turn the
 * index quadratic.
 */
final class SymbolNames {
    private static final long MULTIPLIER = 0x9e37_79b9_7f4a_7c15L;

    private final byte[] bytes;
    private final int[] starts;     // name i is bytes[starts[i], starts[i + 1])
    private final long seed;
    private final int[] slots;      // 1 + index of a name's first occurrence, 0 for an empty slot

    private SymbolNames(byte[] bytes, int[] starts, long seed, int[] hashes) {
        this.bytes = bytes;
        this.starts = starts;
        this.seed = seed;
        int count = hashes.length;
        this.slots = new int[Integer.highestOneBit(Math.max(count, 1) * 2) * 2];
        int mask = slots.length - 1;
        for (int i = 0; i < count; i++) {
            int slot = hashes[i] & mask;
            while (slots[slot] != 0 && !sameName(slots[slot] - 1, i)) {
                slot = (slot + 1) & mask;
            }
            if (slots[slot] == 0) {
                slots[slot] = i + 1;
            }
        }
    }

    int count() {
        return starts.length - 1;
    }

    String name(int index) {
        return new String(bytes, starts[index], starts[index + 1] - starts[index], StandardCharsets.ISO_8859_1);
    }

    /** Index of the first symbol with this name, or -1. */
    int first(String name) {
        long hash = seed;
        for (int i = 0; i < name.length(); i++) {
            if (name.charAt(i) > 0xff) {
                return -1;
            }
            hash = step(hash, name.charAt(i));
        }
        int mask = slots.length - 1;
        for (int slot = spread(hash) & mask; slots[slot] != 0; slot = (slot + 1) & mask) {
            int index = slots[slot] - 1;
            if (equals(index, name)) {
                return index;
            }
        }
        return -1;
    }

    private boolean equals(int index, String name) {
        int from = starts[index];
        int length = starts[index + 1] - from;
        if (length != name.length()) {
            return false;
        }
        for (int i = 0; i < length; i++) {
            if ((bytes[from + i] & 0xff) != name.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    private boolean sameName(int a, int b) {
        return Arrays.equals(bytes, starts[a], starts[a + 1], bytes, starts[b], starts[b + 1]);
    }

    private static long step(long hash, int b) {
        return (hash ^ b) * MULTIPLIER;
    }

    private static int spread(long hash) {
        return (int) (hash ^ hash >>> 29 ^ hash >>> 47);
    }

    /** Collects names one byte at a time. */
    static final class Builder {
        private final int[] starts;
        private final int[] hashes;
        private final int maxBytes;
        private final long seed = ThreadLocalRandom.current().nextLong();
        private byte[] bytes;
        private int length;
        private int count;
        private long hash = seed;

        Builder(int count, int expectedBytes, int maxBytes) {
            this.starts = new int[count + 1];
            this.hashes = new int[count];
            this.maxBytes = maxBytes;
            this.bytes = new byte[Math.min(Math.max(expectedBytes, 16), maxBytes)];
        }

        /** Appends a byte to the current name; false once the names would exceed their byte limit. */
        boolean append(byte b) {
            if (length == bytes.length) {
                if (length == maxBytes) {
                    return false;
                }
                bytes = Arrays.copyOf(bytes, (int) Math.min(2L * length, maxBytes));
            }
            bytes[length++] = b;
            hash = step(hash, b & 0xff);
            return true;
        }

        /** Length of the current name so far. */
        int current() {
            return length - starts[count];
        }

        void endName() {
            hashes[count++] = spread(hash);
            starts[count] = length;
            hash = seed;
        }

        SymbolNames build() {
            return new SymbolNames(bytes, starts, seed, hashes);
        }
    }
}
