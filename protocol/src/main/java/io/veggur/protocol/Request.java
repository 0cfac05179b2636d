package io.veggur.protocol;

import java.util.List;

/** Messages a client sends. Each carries a client-chosen request id in its frame; replies echo it. */
public sealed interface Request {
    /** First message on a connection: the range of protocol versions the client speaks. */
    record Hello(int minVersion, int maxVersion) implements Request {}

    /** Scatter-gather read of guest-physical ranges, answered by one {@link Reply.Data} holding them back to back. */
    record ReadPhysical(List<PhysicalRange> ranges) implements Request {
        public ReadPhysical {
            ranges = List.copyOf(ranges);
        }

        public long totalLength() {
            return ranges.stream().mapToLong(PhysicalRange::length).sum();
        }
    }

    record WritePhysical(long address, byte[] data) implements Request {}

    record GetRegisters(int vcpu) implements Request {}

    record Pause() implements Request {}

    record Resume() implements Request {}

    /** Asks for a read-only file descriptor of guest RAM, passed with the reply (UNIX sockets only). */
    record GrantMemoryFd() implements Request {}

    /** Starts delivery of {@link Event}s on this connection. */
    record SubscribeVmEvents() implements Request {}

    record PhysicalRange(long address, int length) {
        public PhysicalRange {
            if (length < 0) {
                throw new IllegalArgumentException("negative length " + length);
            }
        }
    }
}
