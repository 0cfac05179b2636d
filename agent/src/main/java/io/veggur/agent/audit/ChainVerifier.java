package io.veggur.agent.audit;

import java.util.Optional;

/**
 * Checks records one at a time in the order they are read, stopping at the first break. For each record, in this
 * order: its seq must be the next one (the first is 1), its fields must hash to its stored hash, and its prev_hash
 * must be the previous record's hash. The order of the checks decides which kind a break is reported as when several
 * apply (a moved record fails the hash before the link). After the last record, {@link #finish} compares the end of
 * the chain with the separately kept head and with an exported anchor.
 */
final class ChainVerifier {
    private final AuditHead anchor;
    private long expectedSeq = 1;
    private String previousHash = ChainHash.GENESIS;
    private ChainBreak broken;

    /** @param anchor an exported head the chain must still contain, or null */
    ChainVerifier(AuditHead anchor) {
        this.anchor = anchor;
    }

    /** Checks the next record; returns false once the chain is broken (further records are then ignored). */
    boolean accept(AuditRecord record) {
        if (broken != null) {
            return false;
        }
        if (record.seq() != expectedSeq) {
            return fail(expectedSeq, ChainBreak.Kind.SEQ_GAP,
                    "expected seq " + expectedSeq + " but the next record is seq " + record.seq());
        }
        if (!record.computedHash().equals(record.hash())) {
            return fail(record.seq(), ChainBreak.Kind.HASH_MISMATCH,
                    "the record's fields hash to " + record.computedHash() + ", not to its stored hash " + record.hash());
        }
        if (!record.prevHash().equals(previousHash)) {
            return fail(record.seq(), ChainBreak.Kind.PREV_HASH_MISMATCH,
                    "prev_hash " + record.prevHash() + " is not the hash of seq " + (record.seq() - 1) + ", " + previousHash);
        }
        if (anchor != null && anchor.seq() == record.seq() && !anchor.hash().equals(record.hash())) {
            return fail(record.seq(), ChainBreak.Kind.ANCHOR_MISMATCH,
                    "the exported head says seq " + anchor.seq() + " has hash " + anchor.hash() + ", the chain has " + record.hash());
        }
        previousHash = record.hash();
        expectedSeq++;
        return true;
    }

    /**
     * Ends the walk. {@code head} is the separately stored head, or empty when not checked (an export has none);
     * {@code headRequired} says whether a missing head is itself a break.
     */
    AuditVerification finish(Optional<AuditHead> head, boolean headRequired) {
        long last = expectedSeq - 1; // the last intact record
        if (broken == null && anchor != null && anchor.seq() > last) {
            fail(last + 1, ChainBreak.Kind.ANCHOR_MISMATCH,
                    "the exported head names seq " + anchor.seq() + " but the chain ends at seq " + last);
        }
        if (broken == null && headRequired) {
            if (head.isPresent()) {
                checkHead(head.get(), last);
            } else if (last > 0) {
                fail(last, ChainBreak.Kind.HEAD_MISMATCH, "no head is recorded but the chain has " + last + " records");
            }
        }
        return new AuditVerification(last, Optional.ofNullable(broken));
    }

    private void checkHead(AuditHead head, long last) {
        if (head.seq() > last) {
            fail(last + 1, ChainBreak.Kind.HEAD_MISMATCH, "the head records seq " + head.seq()
                    + " but the chain ends at seq " + last + ": records were removed from the tail");
        } else if (head.seq() < last) {
            fail(head.seq() + 1, ChainBreak.Kind.HEAD_MISMATCH, "the chain goes on to seq " + last
                    + " but the head records seq " + head.seq() + ": records were added without the head");
        } else if (!head.hash().equals(previousHash)) {
            fail(last, ChainBreak.Kind.HEAD_MISMATCH,
                    "the head records hash " + head.hash() + " for seq " + last + ", the chain has " + previousHash);
        }
    }

    private boolean fail(long seq, ChainBreak.Kind kind, String message) {
        broken = new ChainBreak(seq, kind, message);
        return false;
    }
}
