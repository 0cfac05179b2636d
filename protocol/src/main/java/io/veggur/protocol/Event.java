package io.veggur.protocol;

import java.util.Map;

/** Unsolicited messages the server pushes to subscribers; their frames carry request id 0. */
public sealed interface Event {
    enum VmState { RUNNING, PAUSED, SHUTDOWN }

    /** The VM changed state; {@code reason} is a short machine-readable word such as "client-pause" or "guest-shutdown". */
    record VmStateChanged(VmState state, String reason) implements Event {}

    enum DebugKind { BREAKPOINT, STEP }

    /**
     * A vCPU stopped for this client: at one of its breakpoints, or after a step it asked for. The vCPU (and, in
     * QEMU's all-stop mode, the whole VM) waits for the client's {@link Request.ResolveEvent} until the server's
     * deadline, then goes on by itself ({@link EventExpired}).
     */
    record Debug(long eventId, DebugKind kind, int breakpointId, int vcpu, Map<Register, Long> registers) implements Event {
        public Debug {
            registers = Map.copyOf(registers);
        }
    }

    /** The client did not resolve the event in time; the server let the vCPU continue. */
    record EventExpired(long eventId) implements Event {}

    /** Events over the client's rate limit were not delivered (their vCPUs continued at once). */
    record EventsDropped(long count) implements Event {}
}
