package io.veggur.protocol;

import java.util.Map;
import java.util.Set;

/** Messages the server sends in answer to a request, carrying that request's id. */
public sealed interface Reply {
    record Welcome(int version, String vmId, int vcpus, MemoryMap memoryMap, Set<Capability> capabilities)
            implements Reply {}

    record Data(byte[] bytes) implements Reply {}

    record Ok() implements Reply {}

    /** Values of every {@link Register} the hypervisor provided; absent ones are missing from the map. */
    record Registers(int vcpu, Map<Register, Long> values) implements Reply {}

    /** The descriptor itself travels out of band (SCM_RIGHTS) with this frame. */
    record MemoryFd(long size) implements Reply {}

    record BreakpointSet(int breakpointId) implements Reply {}

    record Error(ErrorCode code, String message) implements Reply {}
}
