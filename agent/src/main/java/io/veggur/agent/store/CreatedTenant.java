package io.veggur.agent.store;

/** A new tenant and its bearer token, which exists only here: the store keeps its hash. */
public record CreatedTenant(Tenant tenant, String token) {
    @Override
    public String toString() {
        return "CreatedTenant[tenant=" + tenant + ", token=(redacted)]";
    }
}
