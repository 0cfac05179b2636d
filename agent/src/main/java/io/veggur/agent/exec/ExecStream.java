package io.veggur.agent.exec;

/** Which of a command's output streams a chunk came from. */
public enum ExecStream {
    STDOUT,
    STDERR
}
