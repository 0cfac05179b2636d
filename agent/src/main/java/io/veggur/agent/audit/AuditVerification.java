package io.veggur.agent.audit;

import java.util.Optional;

/**
 * The result of walking the chain: how many records, from seq 1 on, were found intact (all of them when there is no
 * break), and the first break if there is one.
 */
public record AuditVerification(long recordsChecked, Optional<ChainBreak> firstBreak) {
    public boolean intact() {
        return firstBreak.isEmpty();
    }
}
