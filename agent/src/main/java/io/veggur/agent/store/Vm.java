package io.veggur.agent.store;

import io.veggur.host.vm.VmState;
import java.time.Instant;

/**
 * A VM as the agent records it. {@code state} is the agent's last knowledge; the VM's supervisor is the authority on
 * whether it really runs, and a restarted agent reconciles the two.
 */
public record Vm(long id, String owner, String name, VmState.Phase state, int memoryMib, int vcpus, Instant created,
                 Instant updated) {
    public static final int MIN_MEMORY_MIB = 128;
    public static final int MAX_MEMORY_MIB = 16384;
    public static final int MAX_VCPUS = 8;

    public VmRef ref() {
        return new VmRef(owner, name);
    }

    /**
     * The VM's name on the host (its directory under {@code $VEGGUR_HOME/vms}): unique across tenants, and free of
     * tenants' names so that host paths reveal nothing about them.
     */
    public String hostName() {
        return "vm-" + id;
    }
}
