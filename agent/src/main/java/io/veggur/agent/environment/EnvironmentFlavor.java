package io.veggur.agent.environment;

import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.store.Environment;
import io.veggur.agent.store.Vm;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * How one flavor builds, re-adopts, tears down and enters its environments. Every resource is named after the
 * environment id (see {@link EnvironmentSockets}), so teardown finds it even if the agent died before recording it.
 * Callers hold the VM's lock.
 */
public interface EnvironmentFlavor {
    /** The name of the environment's main resource (container, monitoring VM, endpoint), recorded before building. */
    String handle(long environmentId);

    /** Opens the environment's role-bound socket and builds the rest; what the tenant is told once comes back. */
    Built build(Environment environment, Vm vm, EnvironmentRequest request) throws IOException;

    /**
     * Whether a READY environment still stands; re-opens its socket and restarts in-agent parts (endpoints, bridges)
     * after an agent restart. False: it is gone and must be torn down.
     */
    boolean intact(Environment environment, Vm vm) throws IOException;

    /** Removes whatever the environment may have. Idempotent; a VM that is gone has closed the socket already. */
    void tearDown(Environment environment, Vm vm) throws IOException;

    /** What tools inside the environment (or on the tenant's machine, for the network flavor) connect to. */
    String endpoint(Environment environment);

    /** Why commands cannot run in this environment, or empty if they can ({@link #exec} is only called then). */
    default Optional<String> execRefusal(Environment environment) {
        return Optional.empty();
    }

    /**
     * Runs a command inside the environment for at most {@code timeout}, its output passed to {@code output} as it
     * comes.
     *
     * @throws io.veggur.agent.exec.ExecReaderGoneException if {@code output} failed (the command was killed)
     */
    ExecResult exec(Environment environment, List<String> argv, Duration timeout, ExecOutput output) throws IOException;

    /**
     * What a build produced: {@code options} (JSON, or null) to record for rebuilding after a restart, and
     * {@code toldOnce}, what the tenant receives in the build's answer and never again (the network flavor's private
     * key). Never put secrets into {@code options}: they go to the audit log.
     */
    record Built(String options, Map<String, String> toldOnce) {
        public static final Built NOTHING = new Built(null, Map.of());
    }
}
