package io.veggur.protocol;

/** Unsolicited messages the server pushes to subscribers; their frames carry request id 0. */
public sealed interface Event {
    enum VmState { RUNNING, PAUSED, SHUTDOWN }

    /** The VM changed state; {@code reason} is a short machine-readable word such as "client-pause" or "guest-shutdown". */
    record VmStateChanged(VmState state, String reason) implements Event {}
}
