package io.veggur.host.server;

import java.io.IOException;
import java.util.HashSet;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Shares the VM's pause among clients. The VM is paused while at least one client holds a pause and resumes when the
 * last holder resumes or disconnects, so a client that dies can never leave the guest paused. Pausing twice from one
 * client is idempotent.
 */
final class PauseArbiter {
    private final VcpuControl vcpus;
    private final Consumer<Boolean> pausedChanged;
    private final Set<Object> holders = new HashSet<>();

    PauseArbiter(VcpuControl vcpus, Consumer<Boolean> pausedChanged) {
        this.vcpus = vcpus;
        this.pausedChanged = pausedChanged;
    }

    synchronized void pause(Object holder) throws IOException {
        if (holders.isEmpty()) {
            vcpus.pause();
            pausedChanged.accept(true);
        }
        holders.add(holder);
    }

    synchronized boolean holds(Object holder) {
        return holders.contains(holder);
    }

    /** Ends a breakpoint's hold on the VM: it runs again unless a client holds a pause. */
    synchronized void releaseTrap(DebugControl debug) throws IOException {
        debug.releaseTrap(holders.isEmpty());
    }

    synchronized void release(Object holder) throws IOException {
        if (holders.remove(holder) && holders.isEmpty()) {
            vcpus.resume();
            pausedChanged.accept(false);
        }
    }
}
