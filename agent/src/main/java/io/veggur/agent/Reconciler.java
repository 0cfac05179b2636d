package io.veggur.agent;

import io.veggur.agent.audit.AuditEntry;
import io.veggur.agent.container.ContainerException;
import io.veggur.agent.environment.ContainerEnvironments;
import io.veggur.agent.environment.EnvironmentFlavor;
import io.veggur.agent.host.HostVms;
import io.veggur.agent.store.AgentStore;
import io.veggur.agent.store.Environment;
import io.veggur.agent.store.EnvironmentState;
import io.veggur.agent.store.Flavor;
import io.veggur.agent.store.Vm;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmState.Phase;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Brings the store and the host together, once at start (re-adoption after a restart or a kill -9) and then every
 * second:
 * <ul>
 * <li>a VM takes the phase its supervisor reports (one that stopped or died on its own sends its environments to
 *     DELETING in the same transaction); a VM left STARTING or STOPPING by a dead agent is settled the same way;</li>
 * <li>a CREATING environment nobody is building (its builder died with the agent) is rolled back to DELETING;</li>
 * <li>DELETING environments are torn down and removed;</li>
 * <li>a READY environment whose container, monitoring VM or endpoint is gone (or cannot be restarted) is torn down;
 *     one that stands is re-adopted as it is;</li>
 * <li>containers labelled as environments the store does not know are removed;</li>
 * <li>requests the VMs' sockets refused are collected into the audit log, each exactly once (teardown collects
 *     them too, first, so that a refusal is attributed to the tenant whose environment it was).</li>
 * </ul>
 * A VM whose lock an API request holds is skipped for the round: its state is in flux, not stale.
 */
final class Reconciler {
    private static final Logger LOG = System.getLogger(Reconciler.class.getName());

    private final AgentStore store;
    private final HostVms vms;
    private final Map<Flavor, EnvironmentFlavor> flavors;
    private final ContainerEnvironments containers;
    private final AgentService service;
    private final VmLocks locks;

    Reconciler(AgentStore store, HostVms vms, Map<Flavor, EnvironmentFlavor> flavors, ContainerEnvironments containers,
            AgentService service, VmLocks locks) {
        this.store = store;
        this.vms = vms;
        this.flavors = flavors;
        this.containers = containers;
        this.service = service;
        this.locks = locks;
    }

    void reconcile() {
        for (Vm vm : store.allVms()) {
            ReentrantLock lock = locks.of(vm.id());
            if (!lock.tryLock()) {
                continue;
            }
            try {
                reconcile(vm);
            } catch (IOException | RuntimeException e) {
                LOG.log(Level.WARNING, "reconciling VM " + vm.hostName() + ": " + e.getMessage());
            } finally {
                lock.unlock();
            }
        }
        try {
            removeStrayContainers();
        } catch (ContainerException | RuntimeException e) {
            LOG.log(Level.WARNING, "looking for stray containers: " + e.getMessage());
        }
    }

    private void reconcile(Vm vm) throws IOException {
        Optional<VmInfo> info = vms.info(vm);
        Phase hostPhase = info.map(HostVms::phase).orElse(Phase.STOPPED);
        if (hostPhase != vm.state() && hostPhase != Phase.STARTING && hostPhase != Phase.STOPPING) {
            vm = store.setVmState(vm.id(), hostPhase);
        }
        for (Environment environment : store.environmentsOf(vm.id())) {
            switch (environment.state()) {
                case CREATING -> store.transitionEnvironment(environment.id(), EnvironmentState.CREATING,
                        EnvironmentState.DELETING, "the agent stopped while building it");
                case READY -> {
                    EnvironmentFlavor flavor = flavors.get(environment.flavor());
                    if (flavor == null || !flavor.intact(environment, vm)) {
                        store.transitionEnvironment(environment.id(), EnvironmentState.READY, EnvironmentState.DELETING,
                                flavor == null ? "this agent does not offer its flavor" : "it is gone");
                    }
                }
                default -> { }
            }
        }
        service.finishDeletions(vm.id()); // which first collects the VM's refusals
    }

    private void removeStrayContainers() throws ContainerException {
        for (String name : containers.strayContainers(store.environmentIds())) {
            LOG.log(Level.INFO, "removing stray environment container " + name);
            containers.removeContainer(name);
            store.audit().append(AuditEntry.allowed(AgentStore.AGENT, "env.stray.remove", "container:" + name, null));
        }
    }

}
