package io.veggur.cli;

import io.veggur.host.vm.GuestConsole;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The marker pages the test guest's {@code veggur-marker} announces on its console: a page filled from a seeded
 * xorshift64 stream, and a page whose first 8 bytes count up about once per millisecond. Knowing the seed, anyone
 * can compute the marker page's exact bytes, so it is ground truth for physical reads.
 */
record TestGuestMarker(long markerAddress, long seed, long counterAddress) {
    static final int PAGE = 4096;
    private static final Pattern MARKER = Pattern.compile("VEGGUR-MARKER pid=\\d+ pfn=0x([0-9a-f]+) seed=0x([0-9a-f]+)");
    private static final Pattern COUNTER = Pattern.compile("VEGGUR-COUNTER pid=\\d+ pfn=0x([0-9a-f]+)");

    static TestGuestMarker await(GuestConsole console, Duration timeout) throws IOException, InterruptedException {
        Matcher marker = console.awaitLine(MARKER, timeout);
        Matcher counter = console.awaitLine(COUNTER, timeout);
        return new TestGuestMarker(Long.parseUnsignedLong(marker.group(1), 16) * PAGE,
                Long.parseUnsignedLong(marker.group(2), 16), Long.parseUnsignedLong(counter.group(1), 16) * PAGE);
    }

    /** The marker page's bytes: 512 little-endian words of xorshift64 (13, 7, 17) from the seed. */
    byte[] expectedMarkerPage() {
        ByteBuffer page = ByteBuffer.allocate(PAGE).order(ByteOrder.LITTLE_ENDIAN);
        long x = seed;
        for (int i = 0; i < PAGE / 8; i++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            page.putLong(x);
        }
        return page.array();
    }
}
