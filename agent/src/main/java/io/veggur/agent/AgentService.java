package io.veggur.agent;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.audit.AuditEntry;
import io.veggur.agent.audit.AuditRecord;
import io.veggur.agent.environment.EnvironmentFlavor;
import io.veggur.agent.environment.EnvironmentRequest;
import io.veggur.agent.environment.EnvironmentSockets;
import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecReaderGoneException;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.exec.LimitedOutput;
import io.veggur.agent.network.Cidr;
import io.veggur.agent.host.HostVms;
import io.veggur.agent.store.AgentStore;
import io.veggur.agent.store.CreatedTenant;
import io.veggur.agent.store.Environment;
import io.veggur.agent.store.EnvironmentState;
import io.veggur.agent.store.Flavor;
import io.veggur.agent.store.Grant;
import io.veggur.agent.store.Operator;
import io.veggur.agent.store.Principal;
import io.veggur.agent.store.Tenant;
import io.veggur.agent.store.VisibleVm;
import io.veggur.agent.store.Vm;
import io.veggur.agent.store.VmRef;
import io.veggur.host.server.Role;
import io.veggur.host.vm.VmException;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmState.Phase;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Locale;
import java.util.concurrent.locks.ReentrantLock;

/**
 * What principals may ask of the agent, checked and carried out. Every method takes the authenticated principal;
 * whatever it may not see answers exactly as if it did not exist (404), and owner-only operations on a VM it sees
 * through a grant answer 403. Host-side work on a VM runs under that VM's lock.
 */
public final class AgentService {
    private static final Logger LOG = System.getLogger(AgentService.class.getName());
    public static final int MAX_ARGS = 64;
    public static final int MAX_ARG_LENGTH = 4096;
    /** Per stream: what a command writes beyond this is dropped (and the run says so). */
    public static final int MAX_EXEC_OUTPUT = 16 << 20;
    public static final Duration MAX_EXEC_TIME = Duration.ofDays(1);

    private final AgentStore store;
    private final HostVms vms;
    private final EnvironmentSockets sockets;
    private final Map<Flavor, EnvironmentFlavor> flavors;
    private final VmLocks locks;

    /** {@code flavors}: the flavors this host offers (the VM flavor needs its image, for instance). */
    AgentService(AgentStore store, HostVms vms, EnvironmentSockets sockets, Map<Flavor, EnvironmentFlavor> flavors,
            VmLocks locks) {
        this.store = store;
        this.vms = vms;
        this.sockets = sockets;
        this.flavors = Map.copyOf(flavors);
        this.locks = locks;
    }

    /** A built environment, what its tools connect to, and what its tenant is told once (e.g. a private key). */
    public record CreatedEnvironment(Environment environment, String endpoint, Map<String, String> toldOnce) {}

    // ---- tenants (operator)

    public CreatedTenant createTenant(Principal who, String name) {
        operatorOnly(who);
        return store.createTenant(name);
    }

    public List<Tenant> tenants(Principal who) {
        operatorOnly(who);
        return store.tenants();
    }

    public List<AuditRecord> audit(Principal who, long after, int limit) {
        operatorOnly(who);
        return store.audit().records(after, Math.clamp(limit, 1, 10_000));
    }

    // ---- VMs

    public List<VisibleVm> vms(Principal who) {
        return store.visibleVms(who);
    }

    public VisibleVm vm(Principal who, VmRef ref) {
        return store.visibleVm(who, ref).orElseThrow(() -> noVm(ref));
    }

    /** Creates one of the caller's VMs and boots it. */
    public VisibleVm createVm(Principal who, String name, int memoryMib, int vcpus) {
        Tenant owner = tenantOnly(who);
        Vm vm = store.createVm(owner, name, memoryMib, vcpus);
        start(vm);
        return vm(who, vm.ref());
    }

    public VisibleVm startVm(Principal who, VmRef ref) {
        Vm vm = owned(who, ref);
        if (vm.state() == Phase.RUNNING || vm.state() == Phase.STARTING) {
            throw new ApiException(409, "VM '" + ref + "' is already " + text(vm.state()));
        }
        start(vm);
        return vm(who, ref);
    }

    public VisibleVm stopVm(Principal who, VmRef ref) {
        stop(owned(who, ref));
        return vm(who, ref);
    }

    /** Stops the VM if it runs (removing every environment on it), then forgets it and its grants. */
    public void deleteVm(Principal who, VmRef ref) {
        Vm vm = owned(who, ref);
        stop(vm);
        store.deleteVm((Tenant) who, ref.name());
    }

    private void start(Vm vm) {
        ReentrantLock lock = locks.of(vm.id());
        lock.lock();
        try {
            store.setVmState(vm.id(), Phase.STARTING);
            try {
                vms.start(vm);
            } catch (VmException | IOException e) {
                store.setVmState(vm.id(), Phase.FAILED);
                LOG.log(Level.WARNING, "VM " + vm.ref() + " (" + vm.hostName() + ") failed to start: " + e.getMessage());
                throw new ApiException(500, "VM '" + vm.ref() + "' failed to start (the host log says why)",
                        "start failed: " + e.getMessage());
            }
            store.setVmState(vm.id(), Phase.RUNNING);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ApiException(503, "the agent is shutting down");
        } finally {
            lock.unlock();
        }
    }

    /** The VM's environments go first (their state change is in the same transaction as the VM's). */
    private void stop(Vm vm) {
        ReentrantLock lock = locks.of(vm.id());
        lock.lock();
        try {
            if (vm.state() != Phase.STOPPED) {
                store.setVmState(vm.id(), Phase.STOPPING);
            }
            finishDeletions(vm.id());
            try {
                vms.stop(vm);
            } catch (VmException | IOException e) {
                LOG.log(Level.WARNING, "stopping VM " + vm.ref() + " (" + vm.hostName() + "): " + e.getMessage());
            }
            store.setVmState(vm.id(), Phase.STOPPED);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ApiException(503, "the agent is shutting down");
        } finally {
            lock.unlock();
        }
    }

    // ---- grants

    public List<Grant> grants(Principal who, VmRef ref) {
        owned(who, ref);
        return store.grants((Tenant) who, ref.name());
    }

    /** Grants (or changes) a role; environments the new role no longer covers are removed before this returns. */
    public Grant grant(Principal who, VmRef ref, String grantee, String role) {
        Vm vm = owned(who, ref);
        Grant grant = store.grant((Tenant) who, ref.name(), grantee, Role.parse(role));
        finishDeletionsLocked(vm.id());
        return grant;
    }

    /** Revokes a grant; the grantee's environment on the VM, and every live session on its socket, end before this returns. */
    public boolean revoke(Principal who, VmRef ref, String grantee) {
        Vm vm = owned(who, ref);
        boolean revoked = store.revoke((Tenant) who, ref.name(), grantee);
        finishDeletionsLocked(vm.id());
        return revoked;
    }

    // ---- environments

    public List<Environment> environments(Principal who) {
        return store.environments(tenantOnly(who));
    }

    public Environment environment(Principal who, VmRef ref) {
        Tenant tenant = tenantOnly(who);
        vm(who, ref);
        return store.environment(tenant, ref).orElseThrow(() -> new ApiException(404,
                "you have no environment for VM '" + ref + "'"));
    }

    /** What tools of this environment connect to (a path inside it, a serial port, a network address). */
    public String endpoint(Environment environment) {
        EnvironmentFlavor flavor = flavors.get(environment.flavor());
        return flavor == null ? null : flavor.endpoint(environment);
    }

    /**
     * Builds an environment and returns it READY; on failure everything built is removed again. {@code clients} and
     * {@code plaintext} are for the network flavor only (clients default to the loopback addresses).
     */
    public CreatedEnvironment createEnvironment(Principal who, VmRef ref, String flavorName, String roleName,
            List<String> clients, boolean plaintext) {
        Tenant tenant = tenantOnly(who);
        Flavor flavor = flavor(flavorName);
        EnvironmentFlavor builder = flavors.get(flavor);
        if (builder == null) {
            throw new ApiException(501, "the " + text(flavor) + " flavor is not available on this host");
        }
        Role role = roleName == null ? Role.READ : Role.parse(roleName);
        if (flavor != Flavor.NETWORK && (!clients.isEmpty() || plaintext)) {
            throw new IllegalArgumentException("client addresses and plaintext are for the network flavor only");
        }
        List<Cidr> blocks = (clients.isEmpty() ? List.of("127.0.0.0/8", "::1/128") : clients).stream()
                .map(Cidr::parse).toList();
        EnvironmentRequest request = new EnvironmentRequest(role, blocks, plaintext);
        // The row is created under the VM's lock: the reconciler takes a CREATING row it can lock the VM of for one
        // whose builder died, and would roll it back under a builder that has not started yet.
        long vmId = vm(who, ref).vm().id();
        ReentrantLock lock = locks.of(vmId);
        lock.lock();
        try {
            Environment environment = store.createEnvironment(tenant, ref, flavor, role);
            if (environment.vmId() != vmId) {
                // The VM was deleted and another created under its name since the lookup (the reconciler, holding
                // that VM's lock, removes this row).
                store.transitionEnvironment(environment.id(), EnvironmentState.CREATING, EnvironmentState.DELETING,
                        "its VM was replaced while it was requested");
                throw new ApiException(409, "VM '" + ref + "' was replaced while the environment was requested");
            }
            Vm vm = store.vm(environment.vmId()).orElseThrow();
            store.recordEnvironmentHandle(environment.id(), builder.handle(environment.id()),
                    sockets.directory(environment.id()));
            EnvironmentFlavor.Built built;
            try {
                built = builder.build(environment, vm, request);
            } catch (IOException | RuntimeException e) {
                LOG.log(Level.WARNING, "building environment " + environment.id() + " failed: " + e.getMessage());
                // The state's detail is shown to the tenant: the reason, which may name host paths, goes to the log.
                store.transitionEnvironment(environment.id(), EnvironmentState.CREATING, EnvironmentState.DELETING,
                        "building failed");
                finishDeletions(environment.vmId());
                throw new ApiException(500, "the environment for VM '" + ref + "' could not be built (the host log says why)",
                        "build failed: " + e.getMessage());
            }
            if (!store.transitionEnvironment(environment.id(), EnvironmentState.CREATING, EnvironmentState.READY, null)) {
                finishDeletions(environment.vmId());
                throw new ApiException(409, "the environment for VM '" + ref + "' was deleted while it was being built");
            }
            Environment ready = store.environment(environment.id()).orElseThrow();
            return new CreatedEnvironment(ready, endpoint(ready), built.toldOnce());
        } finally {
            lock.unlock();
        }
    }

    public void deleteEnvironment(Principal who, VmRef ref) {
        Tenant tenant = tenantOnly(who);
        vm(who, ref);
        Environment environment = store.deleteEnvironment(tenant, ref).orElseThrow(() -> new ApiException(404,
                "you have no environment for VM '" + ref + "'"));
        finishDeletionsLocked(environment.vmId());
    }

    /**
     * Checks that the caller may run {@code argv} in its READY environment for the VM (audited when allowed), and
     * returns the run, which the caller starts once it is ready to take the output.
     */
    public PreparedExec exec(Principal who, VmRef ref, List<String> argv, Duration timeout) {
        Environment environment = environment(who, ref);
        if (argv == null || argv.isEmpty() || argv.size() > MAX_ARGS
                || argv.stream().anyMatch(arg -> arg == null || arg.length() > MAX_ARG_LENGTH)) {
            throw new IllegalArgumentException("give a command of 1.." + MAX_ARGS + " arguments of at most "
                    + MAX_ARG_LENGTH + " characters");
        }
        if (timeout.isNegative() || timeout.isZero() || timeout.compareTo(MAX_EXEC_TIME) > 0) {
            throw new IllegalArgumentException("the timeout must be 1 s to " + MAX_EXEC_TIME.toHours() + " h");
        }
        if (environment.state() != EnvironmentState.READY) {
            throw new ApiException(409, "your environment for VM '" + ref + "' is " + text(environment.state()));
        }
        EnvironmentFlavor flavor = flavors.get(environment.flavor());
        if (flavor == null) {
            throw new ApiException(409, "this agent does not offer the " + text(environment.flavor())
                    + " flavor your environment has");
        }
        flavor.execRefusal(environment).ifPresent(reason -> {
            throw new ApiException(409, reason);
        });
        store.audit().append(AuditEntry.allowed(who.auditName(), "env.exec", "vm:" + ref, abbreviate(String.join(" ", argv))));
        return new PreparedExec(environment, flavor, argv, timeout);
    }

    /** A checked command (see {@link #exec}); {@link #run} it once. */
    public record PreparedExec(Environment environment, EnvironmentFlavor flavor, List<String> argv, Duration timeout) {
        /**
         * Runs the command, its output going to {@code output} as it comes, at most {@value #MAX_EXEC_OUTPUT} bytes
         * of each stream.
         *
         * @throws ExecReaderGoneException if {@code output} failed (the command was killed)
         * @throws ApiException if the environment cannot run commands, or running one failed on the host
         */
        public Finished run(ExecOutput output) throws ExecReaderGoneException {
            LimitedOutput limited = new LimitedOutput(output, MAX_EXEC_OUTPUT);
            try {
                return new Finished(flavor.exec(environment, argv, timeout, limited), limited.truncated());
            } catch (ExecReaderGoneException e) {
                throw e;
            } catch (IOException e) {
                LOG.log(Level.WARNING, "exec in environment " + environment.id() + " failed: " + e.getMessage());
                throw new ApiException(500, "the command could not be run in your environment (the host log says why)",
                        "exec failed: " + e.getMessage());
            }
        }
    }

    /** How a run ended, and whether output was dropped beyond {@value #MAX_EXEC_OUTPUT} bytes of a stream. */
    public record Finished(ExecResult result, boolean truncated) {}

    // ---- teardown

    private void finishDeletionsLocked(long vmId) {
        ReentrantLock lock = locks.of(vmId);
        lock.lock();
        try {
            finishDeletions(vmId);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Tears down and removes the VM's DELETING environments, after collecting what their sockets refused. Caller
     * holds the VM's lock.
     */
    void finishDeletions(long vmId) {
        Vm vm = store.vm(vmId).orElseThrow();
        try {
            collectRefusals(vm);
        } catch (IOException e) {
            LOG.log(Level.WARNING, "collecting refusals of " + vm.hostName() + ": " + e.getMessage());
        }
        for (Environment environment : store.environmentsOf(vmId)) {
            if (environment.state() != EnvironmentState.DELETING) {
                continue;
            }
            try {
                EnvironmentFlavor flavor = flavors.get(environment.flavor());
                if (flavor == null) {
                    LOG.log(Level.WARNING, "environment " + environment.id() + " is of the " + text(environment.flavor())
                            + " flavor, which this agent does not offer: it stays DELETING");
                    continue;
                }
                flavor.tearDown(environment, vm);
                store.removeEnvironment(environment.id());
            } catch (IOException e) {
                // It stays DELETING; the reconciler retries.
                LOG.log(Level.WARNING, "tearing down environment " + environment.id() + " failed: " + e.getMessage());
            }
        }
    }

    /**
     * Appends what the VM's sockets refused since the last collection from this run of its supervisor. Caller holds
     * the VM's lock. A VM that is not running has nothing to collect.
     */
    private void collectRefusals(Vm vm) throws IOException {
        Optional<VmInfo> info = vms.info(vm);
        if (info.isEmpty() || info.get().supervisorPid() <= 0 || HostVms.phase(info.get()) != Phase.RUNNING) {
            return;
        }
        String runId = info.get().id();
        long after = store.refusalCursor(vm.id(), runId);
        while (true) {
            JsonNode batch = vms.control(vm).refusals(after);
            List<AuditEntry> entries = new ArrayList<>();
            long dropped = batch.path("dropped").asLong();
            if (dropped > 0) {
                entries.add(AuditEntry.denied(AgentStore.AGENT, "socket.refused", "vm:" + vm.ref(),
                        dropped + " refusals were dropped before they could be collected"));
            }
            long last = after + dropped;
            for (JsonNode refusal : batch.path("refusals")) {
                entries.add(AuditEntry.denied(holder(refusal.path("holder").asText()), "socket.refused",
                        "vm:" + vm.ref(), refusal.path("what").asText()));
                last = refusal.path("seq").asLong();
            }
            if (entries.isEmpty()) {
                return;
            }
            store.recordRefusals(vm.id(), runId, last, entries);
            after = last;
            if (last >= batch.path("last").asLong()) {
                return;
            }
        }
    }

    /** Who held the refusing socket: an environment's tenant, or the host side for the VM's own socket. */
    private String holder(String socketId) {
        if (socketId.startsWith("env-")) {
            try {
                long id = Long.parseLong(socketId.substring(4));
                return store.environment(id).map(e -> "tenant:" + e.tenant()).orElse("env:" + id);
            } catch (NumberFormatException e) {
                return "socket:" + socketId;
            }
        }
        return "host:" + socketId;
    }

    // ---- checks

    private Vm owned(Principal who, VmRef ref) {
        VisibleVm visible = vm(who, ref);
        if (visible.relation() != VisibleVm.Relation.OWNER) {
            throw new ApiException(403, "only the owner of VM '" + ref + "' may do that");
        }
        return visible.vm();
    }

    private static void operatorOnly(Principal who) {
        if (!(who instanceof Operator)) {
            throw new ApiException(403, "only the operator may do that");
        }
    }

    private static Tenant tenantOnly(Principal who) {
        if (who instanceof Tenant tenant) {
            return tenant;
        }
        throw new ApiException(403, "the operator has no VMs or environments of its own; use a tenant's token");
    }

    static ApiException noVm(VmRef ref) {
        return new ApiException(404, "no VM '" + ref + "'");
    }

    static Flavor flavor(String name) {
        String wanted = name == null ? "container" : name.toLowerCase(Locale.ROOT);
        for (Flavor flavor : Flavor.values()) {
            if (flavor.name().toLowerCase(Locale.ROOT).equals(wanted)) {
                return flavor;
            }
        }
        throw new IllegalArgumentException("unknown flavor '" + name + "' (container, vm or network)");
    }

    private static String text(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT);
    }

    private static String abbreviate(String text) {
        return text.length() <= 512 ? text : text.substring(0, 509) + "...";
    }
}
