package io.veggur.host.server;

import io.veggur.protocol.Event;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;

/**
 * One VM as all of its introspection sockets share it: its RAM, its vCPUs, one pause shared by every client of every
 * socket (so no socket can resume a VM another client holds paused), one memory budget for read replies, and event
 * delivery to every socket's subscribers.
 */
public final class IntrospectedVm {
    /** Bytes of read replies that may be held in memory at once, across all sockets and clients. */
    static final int READ_BUDGET_BYTES = 64 << 20;

    private final String vmId;
    private final GuestRam ram;
    private final VcpuControl vcpus;
    private final PauseArbiter pauses;
    private final DebugBridge debug;
    private final Semaphore readBudget = new Semaphore(READ_BUDGET_BYTES);
    private final RefusalLog refusals = new RefusalLog();
    private final Set<IntrospectionServer> servers = ConcurrentHashMap.newKeySet();

    public IntrospectedVm(String vmId, GuestRam ram, VcpuControl vcpus) {
        this.vmId = vmId;
        this.ram = ram;
        this.vcpus = vcpus;
        this.pauses = new PauseArbiter(vcpus, paused -> publish(new Event.VmStateChanged(
                paused ? Event.VmState.PAUSED : Event.VmState.RUNNING, paused ? "client-pause" : "client-resume")));
        this.debug = vcpus instanceof DebugControl control ? new DebugBridge(control, pauses) : null;
    }

    /** Delivers an event to every subscribed client of every socket. */
    public void publish(Event event) {
        for (IntrospectionServer server : servers) {
            server.publish(event);
        }
    }

    void register(IntrospectionServer server) {
        servers.add(server);
    }

    void unregister(IntrospectionServer server) {
        servers.remove(server);
    }

    String vmId() {
        return vmId;
    }

    GuestRam ram() {
        return ram;
    }

    VcpuControl vcpus() {
        return vcpus;
    }

    PauseArbiter pauses() {
        return pauses;
    }

    /** Breakpoints and debug events, or null when the hypervisor side offers none. */
    DebugBridge debug() {
        return debug;
    }

    Semaphore readBudget() {
        return readBudget;
    }

    /** What this VM's sockets refused, for the host agent's audit log. */
    public RefusalLog refusals() {
        return refusals;
    }
}
