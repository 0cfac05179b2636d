package io.veggur.host.server;

/**
 * What the holder of a socket may do, each role including the ones before it: {@link #READ} is passive (memory,
 * registers, the memory descriptor, state events); {@link #TRACE} adds control of execution (pause and resume,
 * later breakpoints and single-step); {@link #WRITE} adds writes to guest memory.
 */
public enum Role {
    READ, TRACE, WRITE;

    public Role atMost(Role ceiling) {
        return compareTo(ceiling) <= 0 ? this : ceiling;
    }

    public static Role parse(String text) {
        for (Role role : values()) {
            if (role.name().equalsIgnoreCase(text)) {
                return role;
            }
        }
        throw new IllegalArgumentException("unknown role '" + text + "' (read, trace or write)");
    }
}
