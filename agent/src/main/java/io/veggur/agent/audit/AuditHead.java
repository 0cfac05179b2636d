package io.veggur.agent.audit;

/**
 * The last record of the chain: its seq and hash. Written down off the host (printed, mailed, exported), it lets a
 * later {@link AuditLog#verify(AuditHead)} prove that the chain still contains that record, which catches even a
 * complete, consistent rewrite of everything up to it.
 */
public record AuditHead(long seq, String hash) {}
