package io.veggur.agent.audit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.agent.store.AgentStore;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.jdbi.v3.core.Jdbi;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

class AuditLogTest {
    private static final int RECORDS = 5;

    @TempDir
    Path directory;
    private Path file;
    private AgentStore store;
    private AuditLog audit;

    @BeforeEach
    void appendFiveRecords() throws Exception {
        file = directory.resolve("agent.db");
        store = AgentStore.open(file);
        audit = store.audit();
        for (int i = 1; i <= RECORDS; i++) {
            audit.append(AuditEntry.denied("tenant:bob", "vm.read", "vm:alice/web", "attempt " + i));
        }
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void verify_untouchedChain_isIntact() {
        AuditVerification result = audit.verify();

        assertThat(result.intact()).isTrue();
        assertThat(result.recordsChecked()).isEqualTo(RECORDS);
        List<AuditRecord> records = audit.records(0, 100);
        assertThat(records).extracting(AuditRecord::seq).containsExactly(1L, 2L, 3L, 4L, 5L);
        assertThat(records.getFirst().prevHash()).isEqualTo(ChainHash.GENESIS);
        assertThat(records.get(1).prevHash()).isEqualTo(records.getFirst().hash());
        assertThat(audit.head()).contains(new AuditHead(5, records.getLast().hash()));
    }

    @Test
    void verify_emptyLog_isIntact() throws Exception {
        try (AgentStore empty = AgentStore.open(directory.resolve("empty.db"))) {
            assertThat(empty.audit().verify()).isEqualTo(new AuditVerification(0, java.util.Optional.empty()));
        }
    }

    @Test
    void verify_editedDetail_reportsHashMismatchAtThatSeq() throws Exception {
        tamper("UPDATE audit SET detail = 'nothing happened' WHERE seq = 3");

        assertBreak(audit.verify(), 3, ChainBreak.Kind.HASH_MISMATCH);
    }

    @Test
    void verify_flippedDecision_reportsHashMismatchAtThatSeq() throws Exception {
        tamper("UPDATE audit SET decision = 'allowed' WHERE seq = 2");

        assertBreak(audit.verify(), 2, ChainBreak.Kind.HASH_MISMATCH);
    }

    @Test
    void verify_deletedMiddleRecord_reportsSeqGapAtTheMissingSeq() throws Exception {
        tamper("DELETE FROM audit WHERE seq = 3");

        AuditVerification result = audit.verify();

        assertBreak(result, 3, ChainBreak.Kind.SEQ_GAP);
        assertThat(result.recordsChecked()).isEqualTo(2);
    }

    @Test
    void verify_deletedFirstRecord_reportsSeqGapAtOne() throws Exception {
        tamper("DELETE FROM audit WHERE seq = 1");

        assertBreak(audit.verify(), 1, ChainBreak.Kind.SEQ_GAP);
    }

    @Test
    void verify_deletedLastRecord_reportsHeadMismatchAtTheMissingSeq() throws Exception {
        tamper("DELETE FROM audit WHERE seq = 5");

        AuditVerification result = audit.verify();

        assertBreak(result, 5, ChainBreak.Kind.HEAD_MISMATCH);
        assertThat(result.firstBreak().orElseThrow().message()).contains("removed from the tail");
    }

    @Test
    void verify_swappedRecords_reportsTheFirstMovedSeq() throws Exception {
        tamper("UPDATE audit SET seq = -1 WHERE seq = 3",
                "UPDATE audit SET seq = 3 WHERE seq = 4",
                "UPDATE audit SET seq = 4 WHERE seq = -1");

        assertBreak(audit.verify(), 3, ChainBreak.Kind.HASH_MISMATCH);
    }

    @Test
    void verify_replacedRecordWithItsOwnValidHash_reportsPrevHashMismatch() throws Exception {
        AuditEntry forged = AuditEntry.allowed("tenant:bob", "vm.read", "vm:alice/web", "forged");
        Instant time = Instant.ofEpochMilli(1_700_000_000_000L);
        String wrongPrevious = "f".repeat(64);
        tamper("UPDATE audit SET decision = 'allowed', detail = 'forged', time = " + time.toEpochMilli()
                + ", prev_hash = '" + wrongPrevious + "', hash = '" + ChainHash.of(4, time, forged, wrongPrevious)
                + "' WHERE seq = 4");

        assertBreak(audit.verify(), 4, ChainBreak.Kind.PREV_HASH_MISMATCH);
    }

    @Test
    void verify_recordAddedWithoutTheHead_reportsHeadMismatch() throws Exception {
        AuditRecord last = audit.records(4, 1).getFirst();
        AuditEntry entry = AuditEntry.allowed("agent", "vm.state", "vm:alice/web", null);
        Instant time = last.time().plusMillis(1);
        tamper("INSERT INTO audit VALUES (6, " + time.toEpochMilli() + ", 'agent', 'vm.state', 'vm:alice/web', 'allowed', NULL, '"
                + last.hash() + "', '" + ChainHash.of(6, time, entry, last.hash()) + "')");

        assertBreak(audit.verify(), 6, ChainBreak.Kind.HEAD_MISMATCH);
    }

    @Test
    void verify_tailCutAndHeadRewritten_passesOnlyWithoutAnExportedAnchor() throws Exception {
        AuditHead exported = audit.head().orElseThrow();
        AuditRecord fourth = audit.records(3, 1).getFirst();
        tamper("DELETE FROM audit WHERE seq = 5", "UPDATE audit_head SET seq = 4, hash = '" + fourth.hash() + "'");

        // The documented limit: a consistent rewrite of the tail and the head is invisible from inside the host...
        assertThat(audit.verify().intact()).isTrue();
        // ...and caught by a head that was exported before.
        assertBreak(audit.verify(exported), 5, ChainBreak.Kind.ANCHOR_MISMATCH);
    }

    @Test
    void verify_missingHead_reportsHeadMismatch() throws Exception {
        tamper("DELETE FROM audit_head");

        assertBreak(audit.verify(), 5, ChainBreak.Kind.HEAD_MISMATCH);
    }

    @Test
    void rawUpdateOrDelete_withTriggersInPlace_isRefused() throws Exception {
        try (Connection connection = DriverManager.getConnection("jdbc:sqlite:" + file);
             Statement statement = connection.createStatement()) {
            assertThatThrownBy(() -> statement.execute("UPDATE audit SET detail = 'x' WHERE seq = 1"))
                    .isInstanceOf(SQLException.class).hasMessageContaining("append-only");
            assertThatThrownBy(() -> statement.execute("DELETE FROM audit WHERE seq = 5"))
                    .isInstanceOf(SQLException.class).hasMessageContaining("append-only");
        }
        assertThat(audit.verify().intact()).isTrue();
    }

    @Test
    void append_withRolledBackTransaction_leavesNoRecord() {
        Jdbi jdbi = Jdbi.create("jdbc:sqlite:" + file);
        AuditLog log = new AuditLog(jdbi);

        assertThatThrownBy(() -> jdbi.useTransaction(handle -> {
            log.append(handle, AuditEntry.allowed("agent", "env.state", "env:1", "creating -> ready"));
            throw new IllegalStateException("the change it describes failed");
        })).isInstanceOf(IllegalStateException.class);

        assertThat(audit.head().orElseThrow().seq()).isEqualTo(RECORDS);
        assertThat(audit.verify().intact()).isTrue();
    }

    @Test
    void append_outsideATransaction_isRejected() {
        Jdbi jdbi = Jdbi.create("jdbc:sqlite:" + file);
        AuditLog log = new AuditLog(jdbi);

        assertThatThrownBy(() -> jdbi.useHandle(handle -> log.append(handle, AuditEntry.allowed("agent", "x", "y", null))))
                .isInstanceOf(IllegalStateException.class);
    }

    @Test
    void append_fromManyThreads_formsOneUnbrokenChain() throws Exception {
        List<Callable<Void>> writers = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            String actor = "tenant:t" + t;
            writers.add(() -> {
                for (int i = 0; i < 15; i++) {
                    audit.append(AuditEntry.denied(actor, "vm.read", "vm:alice/web", Integer.toString(i)));
                }
                return null;
            });
        }
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            for (Future<Void> done : pool.invokeAll(writers)) {
                done.get();
            }
        }

        AuditVerification result = audit.verify();
        assertThat(result.intact()).isTrue();
        assertThat(result.recordsChecked()).isEqualTo(RECORDS + 60);
    }

    @Test
    void verify_duringConcurrentAppends_alwaysSeesOneConsistentSnapshot() throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
            Future<?> writer = pool.submit(() -> {
                for (int i = 0; i < 40; i++) {
                    audit.append(AuditEntry.denied("tenant:bob", "vm.read", "vm:alice/web", Integer.toString(i)));
                }
            });
            while (!writer.isDone()) {
                AuditVerification result = audit.verify();
                assertThat(result.firstBreak()).as("verify during appends").isEmpty();
            }
            writer.get();
        }
        assertThat(audit.verify().recordsChecked()).isEqualTo(RECORDS + 40);
    }

    @Test
    @Timeout(5)
    void verifyAndExport_whileAWriterHoldsTheLock_readWithoutWaiting() throws Exception {
        try (Connection writer = DriverManager.getConnection("jdbc:sqlite:" + file);
             Statement statement = writer.createStatement()) {
            statement.execute("BEGIN IMMEDIATE");
            statement.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 99, 'uncommitted') "
                    + "ON CONFLICT (id) DO UPDATE SET seq = 99");

            assertThat(audit.verify().intact()).isTrue();
            assertThat(audit.export(directory.resolve("audit.jsonl"))).isEqualTo(RECORDS);
            statement.execute("ROLLBACK");
        }
    }

    @Test
    void export_untouched_verifiesOffHostWithTheAnchor() throws Exception {
        Path exported = directory.resolve("audit.jsonl");

        assertThat(audit.export(exported)).isEqualTo(RECORDS);

        assertThat(Files.readAllLines(exported)).hasSize(RECORDS).first().asString()
                .contains("\"seq\":1").contains("\"decision\":\"denied\"").contains("\"prev_hash\":\"" + ChainHash.GENESIS);
        assertThat(AuditLog.verifyExport(exported).intact()).isTrue();
        assertThat(AuditLog.verifyExport(exported, audit.head().orElseThrow()).intact()).isTrue();
    }

    @Test
    void verifyExport_editedOrRemovedLine_reportsTheSeq() throws Exception {
        Path exported = directory.resolve("audit.jsonl");
        audit.export(exported);
        List<String> lines = Files.readAllLines(exported);

        List<String> edited = new ArrayList<>(lines);
        edited.set(1, edited.get(1).replace("attempt 2", "attempt 9"));
        Files.write(exported, edited, StandardCharsets.UTF_8);
        assertBreak(AuditLog.verifyExport(exported), 2, ChainBreak.Kind.HASH_MISMATCH);

        List<String> shortened = new ArrayList<>(lines);
        shortened.remove(3);
        Files.write(exported, shortened, StandardCharsets.UTF_8);
        assertBreak(AuditLog.verifyExport(exported), 4, ChainBreak.Kind.SEQ_GAP);

        Files.write(exported, lines.subList(0, 4), StandardCharsets.UTF_8);
        assertBreak(AuditLog.verifyExport(exported, audit.head().orElseThrow()), 5, ChainBreak.Kind.ANCHOR_MISMATCH);
    }

    private void tamper(String... statements) throws SQLException {
        try (Connection connection = DriverManager.getConnection("jdbc:sqlite:" + file);
             Statement statement = connection.createStatement()) {
            statement.execute("DROP TRIGGER audit_no_update");
            statement.execute("DROP TRIGGER audit_no_delete");
            for (String sql : statements) {
                statement.execute(sql);
            }
        }
    }

    private static void assertBreak(AuditVerification result, long seq, ChainBreak.Kind kind) {
        assertThat(result.firstBreak()).as("break").isPresent();
        ChainBreak broken = result.firstBreak().get();
        assertThat(broken.kind()).as(broken.message()).isEqualTo(kind);
        assertThat(broken.seq()).as(broken.message()).isEqualTo(seq);
    }
}
