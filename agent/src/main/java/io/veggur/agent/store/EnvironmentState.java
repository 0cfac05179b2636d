package io.veggur.agent.store;

/**
 * The life cycle of an environment. CREATING and DELETING are work in progress that a restarted agent must finish
 * or roll back ({@link AgentStore#environmentsOf}); READY environments are re-adopted; FAILED ones hold no
 * access and stay, to say why, until their tenant deletes them (or a revoke or the VM's stop does). Every environment
 * ends through DELETING, where its resources are torn down before the row is removed.
 *
 * <pre>
 * CREATING -> READY | FAILED | DELETING
 * READY    -> FAILED | DELETING
 * FAILED   -> DELETING
 * DELETING -> (removed)
 * </pre>
 */
public enum EnvironmentState {
    CREATING, READY, DELETING, FAILED;

    public boolean canBecome(EnvironmentState next) {
        return switch (this) {
            case CREATING -> next == READY || next == FAILED || next == DELETING;
            case READY -> next == FAILED || next == DELETING;
            case FAILED -> next == DELETING;
            case DELETING -> false;
        };
    }

    /** Whether this state is unfinished work. */
    public boolean pending() {
        return this == CREATING || this == DELETING;
    }
}
