package io.veggur.host.vm;

import com.fasterxml.jackson.annotation.JsonIgnore;
import java.time.Instant;

/**
 * A VM's life-cycle state as its supervisor last recorded it. The supervisor is the only writer; readers must also
 * check that {@code supervisorPid} is alive, since a supervisor killed with SIGKILL cannot record its own death.
 */
public record VmState(Phase phase, long supervisorPid, long qemuPid, String error, Instant updatedAt) {
    public enum Phase { STARTING, RUNNING, STOPPING, STOPPED, FAILED }

    public static VmState of(Phase phase, long supervisorPid, long qemuPid, String error) {
        return new VmState(phase, supervisorPid, qemuPid, error, Instant.now());
    }

    @JsonIgnore
    public boolean isActive() {
        return phase == Phase.STARTING || phase == Phase.RUNNING || phase == Phase.STOPPING;
    }
}
