package io.veggur.agent.store;

/**
 * The holder of the operator token: administers tenants and sees every VM. It is as powerful as root on the host,
 * which it stands for; every use is audited like a tenant's.
 */
public record Operator() implements Principal {
    public static final Operator INSTANCE = new Operator();

    @Override
    public String auditName() {
        return "operator";
    }
}
