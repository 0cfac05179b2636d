package io.veggur.host.server;

import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Event;
import io.veggur.protocol.ProtocolException;
import io.veggur.protocol.Register;
import io.veggur.protocol.Request;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.System.Logger;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Breakpoints and debug events for all clients of one VM, on top of the gdbstub ({@link DebugControl}). The client
 * is never trusted to keep the guest alive; this class does:
 * <ul>
 * <li>an event waits for its client's resolution at most {@link #REPLY_DEADLINE}; then the vCPU goes on by itself and
 *     the client is told ({@link Event.EventExpired});</li>
 * <li>a client that leaves (or dies) loses its breakpoints, and an event waiting for it is resolved at once;</li>
 * <li>breakpoints per client and per VM, steps per event and events per second per client are bounded; events over
 *     the rate are not delivered (the vCPU continues) and are counted ({@link Event.EventsDropped});</li>
 * <li>a client may only write general-purpose registers, RIP and RFLAGS, and only with the write role;</li>
 * <li>continuing from a breakpoint steps over it (remove, one instruction, re-insert), so a guest never spins on
 *     one.</li>
 * </ul>
 * Traps are handled one at a time on one thread; the VM (all-stop) stays stopped while an event waits.
 */
final class DebugBridge {
    static final int MAX_BREAKPOINTS_PER_CLIENT = 64;
    static final int MAX_BREAKPOINTS_PER_VM = 256;
    static final Duration REPLY_DEADLINE = Duration.ofSeconds(1);
    static final int MAX_EVENTS_PER_SECOND = 20_000;
    static final int MAX_STEPS_PER_EVENT = 10_000;
    static final int MAX_STEP_ATTEMPTS = 16;
    static final Set<Register> WRITABLE = EnumSet.of(Register.RAX, Register.RBX, Register.RCX, Register.RDX,
            Register.RSI, Register.RDI, Register.RBP, Register.RSP, Register.R8, Register.R9, Register.R10, Register.R11,
            Register.R12, Register.R13, Register.R14, Register.R15, Register.RIP, Register.RFLAGS);
    private static final Logger LOG = System.getLogger(DebugBridge.class.getName());

    private record Breakpoint(int id, ClientSession owner, long address, long pageTableRoot) {}

    private record Resolution(Request.Action action, Map<Register, Long> registers) {
        static final Resolution CONTINUE = new Resolution(Request.Action.CONTINUE, Map.of());
    }

    private record Pending(long eventId, ClientSession client, CompletableFuture<Resolution> resolution) {}

    /** Events delivered to one client in the current one-second window, and those dropped since the last notice. */
    private static final class Rate {
        long windowStart = System.nanoTime();
        int delivered;
        long dropped;
    }

    private final DebugControl control;
    private final PauseArbiter pauses;
    /** Work on the debug thread: traps to handle, and clients' single steps. One at a time, in order. */
    private final LinkedBlockingQueue<Runnable> work = new LinkedBlockingQueue<>();
    // Guarded by this.
    private final Map<Integer, Breakpoint> breakpoints = new HashMap<>();
    private final Map<Long, Integer> installed = new HashMap<>();
    private final Map<ClientSession, Rate> rates = new HashMap<>();
    private int nextBreakpointId = 1;
    private long nextEventId = 1;
    private volatile Pending pending;
    /** The bridge's own steps also trap; those are not events. */
    private volatile boolean stepping;
    /**
     * Held while the guest's breakpoints change: a step over one removes it for a moment, and a client removing or
     * adding one meanwhile must neither find it missing nor have it come back.
     */
    private final Object guestBreakpoints = new Object();

    DebugBridge(DebugControl control, PauseArbiter pauses) {
        this.control = control;
        this.pauses = pauses;
        control.onTrap(vcpu -> {
            if (!stepping) {
                work.add(() -> handleTrapAndRelease(vcpu));
            }
        });
        Thread.ofPlatform().daemon().name("veggur-debug-events").start(this::work);
    }

    boolean breakpointsInvisible() {
        return control.breakpointsInvisible();
    }

    int setBreakpoint(ClientSession owner, long address, long pageTableRoot) throws IOException {
        if (address >> 47 != 0 && address >> 47 != -1) {
            throw new ProtocolException(ErrorCode.OUT_OF_RANGE, "0x%x is not a canonical address".formatted(address));
        }
        boolean insert;
        int id;
        synchronized (this) {
            long mine = breakpoints.values().stream().filter(b -> b.owner() == owner).count();
            if (mine >= MAX_BREAKPOINTS_PER_CLIENT || breakpoints.size() >= MAX_BREAKPOINTS_PER_VM) {
                throw new ProtocolException(ErrorCode.TOO_LARGE, "at most " + MAX_BREAKPOINTS_PER_CLIENT
                        + " breakpoints per client and " + MAX_BREAKPOINTS_PER_VM + " per VM");
            }
            id = nextBreakpointId++;
            breakpoints.put(id, new Breakpoint(id, owner, address,
                    pageTableRoot & Request.SetBreakpoint.PAGE_TABLE_ROOT_MASK));
            insert = installed.merge(address, 1, Integer::sum) == 1;
        }
        if (insert) {
            try {
                synchronized (guestBreakpoints) {
                    control.insertBreakpoint(address);
                }
            } catch (IOException e) {
                forget(id);
                throw e;
            }
        }
        return id;
    }

    void clearBreakpoint(ClientSession owner, int id) throws IOException {
        synchronized (this) {
            Breakpoint breakpoint = breakpoints.get(id);
            if (breakpoint == null || breakpoint.owner() != owner) {
                throw new ProtocolException(ErrorCode.OUT_OF_RANGE, "you have no breakpoint " + id);
            }
        }
        uninstall(forget(id));
    }

    void resolve(ClientSession client, long eventId, Request.Action action, Map<Register, Long> registers)
            throws ProtocolException {
        for (Register register : registers.keySet()) {
            if (!WRITABLE.contains(register)) {
                throw new ProtocolException(ErrorCode.PERMISSION_DENIED, register + " cannot be written (only general-"
                        + "purpose registers, RIP and RFLAGS)");
            }
        }
        Pending waiting = pending;
        if (waiting == null || waiting.eventId() != eventId || waiting.client() != client
                || !waiting.resolution().complete(new Resolution(action, registers))) {
            throw new ProtocolException(ErrorCode.OUT_OF_RANGE, "event " + eventId + " is not waiting for you"
                    + " (resolved already, or expired)");
        }
    }

    /** The client left: its breakpoints go, and an event waiting for it is resolved. */
    void clientGone(ClientSession client) {
        Pending waiting = pending;
        if (waiting != null && waiting.client() == client) {
            waiting.resolution().complete(Resolution.CONTINUE);
        }
        List<Integer> ids;
        synchronized (this) {
            rates.remove(client);
            ids = breakpoints.values().stream().filter(b -> b.owner() == client).map(Breakpoint::id).toList();
        }
        for (int id : ids) {
            try {
                uninstall(forget(id));
            } catch (IOException e) {
                LOG.log(Level.ERROR, "could not remove breakpoint " + id + " of a departed client", e);
            }
        }
    }

    private synchronized Breakpoint forget(int id) {
        Breakpoint breakpoint = breakpoints.remove(id);
        installed.computeIfPresent(breakpoint.address(), (address, count) -> count == 1 ? null : count - 1);
        return breakpoint;
    }

    /** Removes the breakpoint from the guest once no client wants that address any more. */
    private void uninstall(Breakpoint breakpoint) throws IOException {
        synchronized (guestBreakpoints) {
            if (!isInstalled(breakpoint.address())) {
                control.removeBreakpoint(breakpoint.address());
            }
        }
    }

    private synchronized boolean isInstalled(long address) {
        return installed.containsKey(address);
    }

    private void work() {
        while (true) {
            try {
                work.take().run();
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private void handleTrapAndRelease(int vcpu) {
        try {
            handleTrap(vcpu);
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.ERROR, "handling a trap on vCPU " + vcpu + " failed; letting the VM go on", e);
        }
        try {
            pauses.releaseTrap(control);
        } catch (IOException e) {
            LOG.log(Level.ERROR, "could not let the VM go on after a trap", e);
        }
    }

    /**
     * One instruction on a vCPU of a VM the client holds paused, on the debug thread (so never in the middle of a
     * trap's handling); the VM stays paused. Returns the registers after it.
     */
    Map<Register, Long> singleStep(ClientSession client, int vcpu) throws IOException {
        if (!pauses.holds(client)) {
            throw new ProtocolException(ErrorCode.VM_UNAVAILABLE, "pause the VM before stepping it");
        }
        CompletableFuture<Map<Register, Long>> result = new CompletableFuture<>();
        work.add(() -> {
            try {
                Map<Register, Long> before = control.stoppedRegisters(vcpu);
                long rip = before.getOrDefault(Register.RIP, 0L);
                result.complete(isInstalled(rip) ? stepOver(vcpu, rip, before) : step(vcpu, before));
            } catch (IOException | RuntimeException e) {
                result.completeExceptionally(e);
            } finally {
                try {
                    pauses.releaseTrap(control);
                } catch (IOException e) {
                    LOG.log(Level.ERROR, "could not end a step's trap", e);
                }
            }
        });
        try {
            return result.get();
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while stepping", e);
        }
    }

    private void handleTrap(int vcpu) throws IOException {
        Map<Register, Long> registers = control.stoppedRegisters(vcpu);
        long rip = registers.getOrDefault(Register.RIP, 0L);
        long root = registers.getOrDefault(Register.CR3, 0L) & Request.SetBreakpoint.PAGE_TABLE_ROOT_MASK;
        List<Breakpoint> hits = new ArrayList<>();
        synchronized (this) {
            for (Breakpoint breakpoint : breakpoints.values()) {
                if (breakpoint.address() == rip && (breakpoint.pageTableRoot() == 0 || breakpoint.pageTableRoot() == root)) {
                    hits.add(breakpoint);
                }
            }
        }
        for (Breakpoint hit : hits) {
            registers = runEvent(hit.owner(), hit.id(), vcpu, registers);
        }
        long now = registers.getOrDefault(Register.RIP, 0L);
        if (isInstalled(now)) {
            stepOver(vcpu, now, registers);
        }
    }

    /** Delivers the event, applies the client's resolution, and steps as long as it asks to. Returns the registers. */
    private Map<Register, Long> runEvent(ClientSession client, int breakpointId, int vcpu, Map<Register, Long> registers)
            throws IOException {
        Event.DebugKind kind = Event.DebugKind.BREAKPOINT;
        for (int steps = 0; ; steps++) {
            Pending waiting = admit(client);
            if (waiting == null) {
                return registers;
            }
            pending = waiting;
            Resolution resolution;
            try {
                client.deliverDebug(new Event.Debug(waiting.eventId(), kind, breakpointId, vcpu, registers));
                resolution = waiting.resolution().get(REPLY_DEADLINE.toNanos(), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                client.deliverDebug(new Event.EventExpired(waiting.eventId()));
                resolution = Resolution.CONTINUE;
            } catch (ExecutionException e) {
                resolution = Resolution.CONTINUE;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return registers;
            } finally {
                pending = null;
            }
            if (!resolution.registers().isEmpty()) {
                control.writeRegisters(vcpu, resolution.registers());
                Map<Register, Long> updated = new EnumMap<>(registers);
                updated.putAll(resolution.registers());
                registers = updated;
            }
            if (resolution.action() == Request.Action.CONTINUE || steps >= MAX_STEPS_PER_EVENT) {
                return registers;
            }
            long rip = registers.getOrDefault(Register.RIP, 0L);
            registers = isInstalled(rip) ? stepOver(vcpu, rip, registers) : step(vcpu, registers);
            kind = Event.DebugKind.STEP;
        }
    }

    /** A new event for the client, or null when it is over its rate (then counted, and told once per window). */
    private Pending admit(ClientSession client) {
        long dropped = 0;
        Pending admitted = null;
        synchronized (this) {
            Rate rate = rates.computeIfAbsent(client, c -> new Rate());
            long now = System.nanoTime();
            if (now - rate.windowStart >= TimeUnit.SECONDS.toNanos(1)) {
                dropped = rate.dropped;
                rate.windowStart = now;
                rate.delivered = 0;
                rate.dropped = 0;
            }
            if (rate.delivered < MAX_EVENTS_PER_SECOND) {
                rate.delivered++;
                admitted = new Pending(nextEventId++, client, new CompletableFuture<>());
            } else {
                rate.dropped++;
            }
        }
        if (dropped > 0) {
            client.deliverDebug(new Event.EventsDropped(dropped));
        }
        return admitted;
    }

    /**
     * One instruction past a breakpoint at {@code rip}: without it, continuing would hit the same one again. Returns
     * the registers after it.
     */
    private Map<Register, Long> stepOver(int vcpu, long rip, Map<Register, Long> before) throws IOException {
        synchronized (guestBreakpoints) {
            if (!isInstalled(rip)) {
                return step(vcpu, before); // its last owner removed it meanwhile
            }
            control.removeBreakpoint(rip);
            try {
                return step(vcpu, before);
            } finally {
                if (isInstalled(rip)) {
                    control.insertBreakpoint(rip);
                }
            }
        }
    }

    /**
     * Executes one instruction. QEMU sometimes reports a single step done without having executed anything (the vCPU
     * left its loop for another reason first), so a step that changed no register is repeated, a bounded number of
     * times (an instruction that jumps to itself changes nothing, ever).
     */
    private Map<Register, Long> step(int vcpu, Map<Register, Long> before) throws IOException {
        Map<Register, Long> after = before;
        for (int attempt = 0; attempt < MAX_STEP_ATTEMPTS; attempt++) {
            stepping = true;
            try {
                control.step(vcpu);
            } finally {
                stepping = false;
            }
            after = control.stoppedRegisters(vcpu);
            if (!sameState(before, after)) {
                return after;
            }
        }
        LOG.log(Level.WARNING, "vCPU %d did not move in %d single steps at %#x".formatted(vcpu, MAX_STEP_ATTEMPTS,
                before.getOrDefault(Register.RIP, 0L)));
        return after;
    }

    private static boolean sameState(Map<Register, Long> before, Map<Register, Long> after) {
        for (Register register : WRITABLE) {
            if (!Objects.equals(before.get(register), after.get(register))) {
                return false;
            }
        }
        return true;
    }
}
