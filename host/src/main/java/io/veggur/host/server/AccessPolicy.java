package io.veggur.host.server;

import io.veggur.protocol.Capability;
import java.util.EnumSet;
import java.util.Set;

/**
 * What the holder of a socket may do. The server checks every request against it; the client is only told, never
 * trusted. Memory writes are off unless the VM's owner turned them on.
 */
public record AccessPolicy(boolean allowWrite) {
    public Set<Capability> capabilities() {
        EnumSet<Capability> set = EnumSet.of(Capability.READ_PHYSICAL, Capability.REGISTERS, Capability.PAUSE_RESUME,
                Capability.MEMORY_FD, Capability.VM_EVENTS);
        if (allowWrite) {
            set.add(Capability.WRITE_PHYSICAL);
        }
        return set;
    }
}
