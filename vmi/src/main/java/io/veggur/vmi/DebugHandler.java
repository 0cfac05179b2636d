package io.veggur.vmi;

import io.veggur.protocol.Event;
import io.veggur.protocol.Register;
import io.veggur.protocol.Request;
import java.io.IOException;
import java.util.Map;

/**
 * Handles debug events (breakpoint hits and steps) of one session, one at a time on the session's debug thread. While
 * it runs, the VM waits (the server lets it go on by itself after its deadline, about a second), so a handler should
 * read what it needs and decide quickly. It may use the session meanwhile (read memory, set breakpoints).
 */
@FunctionalInterface
public interface DebugHandler {
    Resolution onEvent(Event.Debug event) throws IOException;

    /**
     * The server's deadline passed before the resolution arrived; the vCPU went on without it. Called on the session's
     * reader thread (a handler still busy with the event must not delay the news): keep it quick.
     */
    default void expired(long eventId) {}

    /** Events over the rate limit were not delivered. Called on the session's reader thread: keep it quick. */
    default void dropped(long count) {}

    /** How to let the vCPU go on: continue or step, after writing {@code registers} (needs the write role). */
    record Resolution(Request.Action action, Map<Register, Long> registers) {
        public Resolution {
            registers = Map.copyOf(registers);
        }

        public static Resolution proceed() {
            return new Resolution(Request.Action.CONTINUE, Map.of());
        }

        public static Resolution step() {
            return new Resolution(Request.Action.STEP, Map.of());
        }

        public static Resolution proceedWith(Map<Register, Long> registers) {
            return new Resolution(Request.Action.CONTINUE, registers);
        }
    }
}
