package io.veggur.agent.store;

import java.time.Instant;

/** A tenant. {@code id} is internal (never shown to tenants); {@code name} is how everyone refers to it. */
public record Tenant(long id, String name, Instant created) implements Principal {
    @Override
    public String auditName() {
        return "tenant:" + name;
    }
}
