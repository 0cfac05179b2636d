package io.veggur.agent.audit;

/**
 * The first place where the chain is not as it must be. {@code seq} is the position that is wrong: the record whose
 * hash or link does not match, or the first missing seq of a gap or of a removed tail.
 */
public record ChainBreak(long seq, Kind kind, String message) {
    public enum Kind {
        /** The record at seq is missing (deleted, or the records are out of order). */
        SEQ_GAP,
        /** The record's fields do not hash to its stored hash: it was edited. */
        HASH_MISMATCH,
        /** The record does not link to the one before it: a record was replaced or moved. */
        PREV_HASH_MISMATCH,
        /** The separately kept head (last seq and hash) does not match the chain's end: the tail was cut or extended. */
        HEAD_MISMATCH,
        /** The chain does not contain the record named by an exported head. */
        ANCHOR_MISMATCH
    }
}
