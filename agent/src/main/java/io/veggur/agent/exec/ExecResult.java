package io.veggur.agent.exec;

/**
 * How a command run in an environment ended; its output went to an {@link ExecOutput} as it came. A command that
 * outlived its timeout was killed: {@code timedOut} is set and {@code exitCode} is -1.
 */
public record ExecResult(int exitCode, boolean timedOut) {
    public static ExecResult exited(int exitCode) {
        return new ExecResult(exitCode, false);
    }

    public static ExecResult killedAtTimeout() {
        return new ExecResult(-1, true);
    }
}
