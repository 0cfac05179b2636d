package io.veggur.protocol;

import java.util.EnumSet;
import java.util.Set;

/**
 * What a socket offers its holder, announced in the handshake as a bit set. The server enforces every one of them;
 * the announcement only lets clients fail early with a clear message.
 */
public enum Capability {
    READ_PHYSICAL(0),
    WRITE_PHYSICAL(1),
    REGISTERS(2),
    PAUSE_RESUME(3),
    MEMORY_FD(4),
    VM_EVENTS(5),
    /** Breakpoints, debug events and stepping (the trace role). */
    BREAKPOINTS(6),
    /** New register values in an event's resolution (the write role). */
    WRITE_REGISTERS(7);

    private final int bit;

    Capability(int bit) {
        this.bit = bit;
    }

    public static long toBits(Set<Capability> capabilities) {
        long bits = 0;
        for (Capability capability : capabilities) {
            bits |= 1L << capability.bit;
        }
        return bits;
    }

    /** Unknown bits (from a newer server) are ignored. */
    public static Set<Capability> fromBits(long bits) {
        EnumSet<Capability> set = EnumSet.noneOf(Capability.class);
        for (Capability capability : values()) {
            if ((bits & (1L << capability.bit)) != 0) {
                set.add(capability);
            }
        }
        return set;
    }
}
