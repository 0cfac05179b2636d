package io.veggur.agent.store;

/** Who a bearer token belongs to: a {@link Tenant} or the host's {@link Operator}. */
public sealed interface Principal permits Tenant, Operator {
    /** How the audit log names this principal, e.g. {@code tenant:alice}. */
    String auditName();
}
