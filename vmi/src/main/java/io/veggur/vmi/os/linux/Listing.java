package io.veggur.vmi.os.linux;

import java.util.List;

/**
 * The result of walking a kernel list in a live (or corrupt) guest. A walk that meets a cycle, a pointer into
 * unmapped memory or its length bound stops there and says why in {@code problem}, keeping what it found: a guest
 * changing its lists under our feet must not turn into an endless loop or an empty answer.
 */
public record Listing<T>(List<T> items, String problem) {
    public Listing {
        items = List.copyOf(items);
    }

    public boolean complete() {
        return problem == null;
    }
}
