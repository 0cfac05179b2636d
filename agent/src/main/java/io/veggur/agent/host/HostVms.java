package io.veggur.agent.host;

import io.veggur.agent.store.Vm;
import io.veggur.host.vm.SupervisorControl;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmException;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import io.veggur.host.vm.VmSpec;
import io.veggur.host.vm.VmState;
import java.io.IOException;
import java.nio.file.Files;
import java.util.Locale;
import java.util.Optional;

/**
 * The agent's VMs on this host, each run by its own detached supervisor (so VMs outlive an agent restart) in the
 * host directory {@code vms/vm-ID}: the store's id, never a tenant's name.
 */
public final class HostVms {
    private final VeggurHome home;
    private final VmManager manager;

    public HostVms(VeggurHome home) {
        this.home = home;
        this.manager = new VmManager(home);
    }

    /**
     * Boots the built-in guest with the VM's resources. The VM's own socket allows writes: tenants never hold it,
     * they hold environment sockets whose role the agent chooses, and those are capped by this ceiling.
     */
    public VmInfo start(Vm vm) throws VmException, IOException, InterruptedException {
        VmSpec spec = new VmSpec(vm.hostName(), null, null, null, null, (long) vm.memoryMib() << 20, vm.vcpus(), null,
                "auto", true);
        return manager.start(spec);
    }

    public void stop(Vm vm) throws VmException, IOException, InterruptedException {
        if (Files.exists(home.vm(vm.hostName()).config())) {
            manager.stop(vm.hostName());
        }
    }

    /** What the VM's supervisor reports: STOPPED if it never ran here, STARTING before its first report. */
    public VmState.Phase phase(Vm vm) throws IOException {
        return info(vm).map(HostVms::phase).orElse(VmState.Phase.STOPPED);
    }

    public static VmState.Phase phase(VmInfo info) {
        return info.state().equals("unknown") ? VmState.Phase.STARTING
                : VmState.Phase.valueOf(info.state().toUpperCase(Locale.ROOT));
    }

    /** The VM as its supervisor describes it ({@link VmInfo#id()} is new at every boot), if it ever ran here. */
    public Optional<VmInfo> info(Vm vm) throws IOException {
        if (!Files.exists(home.vm(vm.hostName()).config())) {
            return Optional.empty();
        }
        try {
            return Optional.of(manager.info(vm.hostName()));
        } catch (VmException e) {
            return Optional.empty();
        }
    }

    /** The private control channel of the VM's supervisor. */
    public SupervisorControl control(Vm vm) {
        return new SupervisorControl(home.vm(vm.hostName()));
    }
}
