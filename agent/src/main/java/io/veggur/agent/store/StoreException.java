package io.veggur.agent.store;

/**
 * A request the store refuses. The message names only what the requester supplied, so it is safe to show them;
 * NOT_FOUND is also what a tenant gets for another tenant's VM, so the two cannot be told apart.
 */
public final class StoreException extends RuntimeException {
    public enum Reason { NOT_FOUND, CONFLICT, FORBIDDEN }

    private final Reason reason;

    StoreException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }

    static StoreException notFound(String message) {
        return new StoreException(Reason.NOT_FOUND, message);
    }

    static StoreException conflict(String message) {
        return new StoreException(Reason.CONFLICT, message);
    }

    static StoreException forbidden(String message) {
        return new StoreException(Reason.FORBIDDEN, message);
    }
}
