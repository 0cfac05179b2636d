package io.veggur.agent.audit;

import java.util.Objects;

/**
 * What one audit record says: who ({@code actor}, e.g. {@code tenant:alice}, {@code operator}, {@code agent}) did or
 * asked for what ({@code action}, e.g. {@code vm.create}) to what ({@code target}, e.g. {@code vm:alice/web}), whether
 * it was allowed, and free-text {@code detail} (may be null).
 */
public record AuditEntry(String actor, String action, String target, Decision decision, String detail) {
    public enum Decision { ALLOWED, DENIED }

    public AuditEntry {
        Objects.requireNonNull(actor, "actor");
        Objects.requireNonNull(action, "action");
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(decision, "decision");
    }

    public static AuditEntry allowed(String actor, String action, String target, String detail) {
        return new AuditEntry(actor, action, target, Decision.ALLOWED, detail);
    }

    public static AuditEntry denied(String actor, String action, String target, String detail) {
        return new AuditEntry(actor, action, target, Decision.DENIED, detail);
    }
}
