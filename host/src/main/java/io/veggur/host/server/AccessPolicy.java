package io.veggur.host.server;

import io.veggur.protocol.Capability;
import java.util.EnumSet;
import java.util.Set;

/**
 * What the holder of one socket may do, fixed when the socket is opened. The server checks every request against
 * it; the client is only told (as capabilities in the handshake), never trusted. {@code holder} names the socket in
 * the VM's {@link RefusalLog} (the owner's socket, or an environment's control-channel id). {@code memoryDescriptor}
 * is false for a socket whose clients are relayed from elsewhere (TCP, a virtio-serial port): a descriptor cannot
 * cross a relay, so those clients are told to read memory with {@code READ_PHYSICAL} instead.
 */
public record AccessPolicy(Role role, String holder, boolean memoryDescriptor) {
    public Set<Capability> capabilities() {
        EnumSet<Capability> set = EnumSet.of(Capability.READ_PHYSICAL, Capability.REGISTERS, Capability.VM_EVENTS);
        if (memoryDescriptor) {
            set.add(Capability.MEMORY_FD);
        }
        if (role.compareTo(Role.TRACE) >= 0) {
            set.add(Capability.PAUSE_RESUME);
            set.add(Capability.BREAKPOINTS);
        }
        if (role == Role.WRITE) {
            set.add(Capability.WRITE_PHYSICAL);
            set.add(Capability.WRITE_REGISTERS);
        }
        return set;
    }
}
