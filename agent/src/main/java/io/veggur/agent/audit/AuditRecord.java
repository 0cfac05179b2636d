package io.veggur.agent.audit;

import java.time.Instant;

/**
 * One record of the chain as stored: its position {@code seq} (1, 2, 3, … without gaps), its time (millisecond
 * precision), its entry, the previous record's hash ({@link ChainHash#GENESIS} for seq 1) and its own hash, which is
 * {@link ChainHash#of} over all the other fields.
 */
public record AuditRecord(long seq, Instant time, AuditEntry entry, String prevHash, String hash) {
    /** The hash this record should have, computed from its fields (compare with {@link #hash()}). */
    public String computedHash() {
        return ChainHash.of(seq, time, entry, prevHash);
    }
}
