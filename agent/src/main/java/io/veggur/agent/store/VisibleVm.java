package io.veggur.agent.store;

import io.veggur.host.server.Role;

/**
 * A VM as a principal may see it, with why and with what role: the owner and the operator have every role, a
 * grantee the role it was granted.
 */
public record VisibleVm(Vm vm, Relation relation, Role role) {
    public enum Relation { OWNER, GRANTEE, OPERATOR }

    public boolean allows(Role wanted) {
        return role.compareTo(wanted) >= 0;
    }
}
