package io.veggur.agent.container;

/**
 * A request to the Docker Engine failed. The message is one line (what was asked, and the daemon's or the transport's
 * reason); the cause, when kept, is docker-java's exception, for debugging only.
 */
public final class ContainerException extends Exception {
    ContainerException(String message) {
        super(message);
    }

    ContainerException(String message, Throwable cause) {
        super(message, cause);
    }
}
