package io.veggur.agent.store;

import io.veggur.host.server.Role;
import java.time.Instant;

/** The owner of {@code vm} lets tenant {@code grantee} introspect it with {@code role}. One grant per VM and grantee. */
public record Grant(VmRef vm, String grantee, Role role, Instant created) {}
