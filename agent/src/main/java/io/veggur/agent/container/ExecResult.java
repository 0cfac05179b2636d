package io.veggur.agent.container;

/**
 * What a command run in a container produced. {@code stdout} and {@code stderr} hold at most the requested number of
 * bytes each; {@code truncated} says that either stream had more. A command that outlived its timeout has
 * {@code timedOut} set, {@code exitCode} -1, and the output it wrote until then.
 */
public record ExecResult(int exitCode, byte[] stdout, byte[] stderr, boolean truncated, boolean timedOut) {}
