package io.veggur.cli;

import io.veggur.vmi.IntrospectionSession;

/**
 * A client that sets a breakpoint and, at its first event, holds the guest without ever answering: BreakpointIT
 * kills it with SIGKILL at that point. Prints "armed" once the breakpoint is set and "holding" at the event.
 */
final class StuckClient {
    private StuckClient() {}

    public static void main(String[] args) throws Exception {
        IntrospectionSession session = IntrospectionSession.connect(args[0]);
        session.onDebugEvents(event -> {
            System.out.println("holding");
            System.out.flush();
            try {
                Thread.sleep(Long.MAX_VALUE);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return null;
        });
        session.setBreakpoint(Long.parseUnsignedLong(args[1], 16), 0);
        System.out.println("armed");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
