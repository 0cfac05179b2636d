package io.veggur.agent.client;

import java.io.IOException;

/** The agent refused or failed a request: its HTTP status and its message. */
public final class AgentException extends IOException {
    private final int status;

    public AgentException(int status, String message) {
        super(message);
        this.status = status;
    }

    public int status() {
        return status;
    }
}
