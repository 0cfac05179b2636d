package io.veggur.vmi.os.linux;

import java.util.List;

/** How the kernel was found: each step, what it found, and how long it took. */
public record DiscoveryReport(List<Step> steps, boolean profileFromCache) {
    public record Step(String name, String result, long nanos) {}

    public DiscoveryReport {
        steps = List.copyOf(steps);
    }
}
