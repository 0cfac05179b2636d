package io.veggur.agent.store;

import io.veggur.host.server.Role;
import java.nio.file.Path;
import java.time.Instant;

/**
 * An introspection environment of {@code tenant} for {@code vm}. {@code handle} (e.g. the container id),
 * {@code socketDirectory} and {@code options} (the flavor's own settings, JSON) are null until recorded;
 * {@code detail} says why it failed or is being deleted, or is null.
 */
public record Environment(long id, long vmId, VmRef vm, long tenantId, String tenant, Flavor flavor, Role role,
                          EnvironmentState state, String handle, Path socketDirectory, String options, String detail,
                          Instant created, Instant updated) {}
