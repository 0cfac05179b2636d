package io.veggur.protocol;

import java.util.List;
import java.util.Map;

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

    /**
     * A breakpoint at a guest-virtual address, hit on any vCPU; {@code pageTableRoot} 0 means any address space (kernel
     * code), otherwise only hits while CR3 (without its flag and PCID bits) equals it are reported.
     */
    record SetBreakpoint(long address, long pageTableRoot) implements Request {
        /**
         * What of CR3 (and of {@code pageTableRoot}) is compared: bits 13-51, without flags and PCID (bits 0-11) and
         * without the PTI user-half bit (12), so a process's root matches in user and kernel mode alike. Without PTI,
         * two roots that differ only in bit 12 cannot be told apart.
         */
        public static final long PAGE_TABLE_ROOT_MASK = 0x000f_ffff_ffff_e000L;
    }

    record ClearBreakpoint(int breakpointId) implements Request {}

    /** Executes one instruction on a vCPU of a VM this client holds paused; the reply is the vCPU's registers after. */
    record SingleStep(int vcpu) implements Request {}

    /** How the client lets a vCPU go on after a {@link Event.Debug} it received. */
    enum Action { CONTINUE, STEP }

    /**
     * The answer to a debug event: optionally new register values (written before the vCPU goes on; needs the write
     * role), then continue, or execute one instruction and report again ({@link Event.Debug} of kind STEP).
     */
    record ResolveEvent(long eventId, Action action, Map<Register, Long> registers) implements Request {
        public ResolveEvent {
            registers = Map.copyOf(registers);
        }
    }

    record PhysicalRange(long address, int length) {
        public PhysicalRange {
            if (length < 0) {
                throw new IllegalArgumentException("negative length " + length);
            }
        }
    }
}
