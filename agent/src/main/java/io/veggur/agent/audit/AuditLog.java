package io.veggur.agent.audit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.HandleCallback;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.StatementContext;
import org.sqlite.SQLiteConfig;
import org.sqlite.SQLiteConnection;
import org.sqlite.SQLiteConnectionConfig;

/**
 * The append-only, hash-chained audit log, kept in the agent's database (tables {@code audit} and
 * {@code audit_head}, created by the agent store's migrations).
 *
 * <p>Invariants: records have seq 1, 2, 3, … with no gaps; each record's hash is {@link ChainHash#of} its fields and
 * the previous record's hash; {@code audit_head} holds the last seq and hash and is updated in the same transaction as
 * every append. An append reads the head and writes the record in one transaction; SQLite transactions are
 * serializable (a writer whose snapshot is stale cannot commit) and seq is the primary key, so concurrent appends
 * cannot fork the chain, and because the store begins write transactions IMMEDIATE they wait for each other instead
 * of failing. {@link #verify()} and {@link #export} read one consistent snapshot without the write lock.
 * A record that describes a state change is appended with {@link #append(Handle, AuditEntry)} in that change's
 * transaction: both are committed or neither is. Triggers refuse UPDATE and DELETE on {@code audit}.
 *
 * <p>What this detects, honestly: {@link #verify()} finds any edited, deleted, inserted or reordered record and a cut
 * tail, as long as the attacker did not also recompute every later hash and the head. Whoever is root on the host can
 * do exactly that (drop the triggers, rewrite the chain consistently), and nothing inside the host can tell. Only a
 * head exported off the host ({@link #head()}, {@link #export}) and later checked with {@link #verify(AuditHead)} or
 * against an exported copy catches a full rewrite of everything up to that head.
 */
public final class AuditLog {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String COLUMNS = "seq, time, actor, action, target, decision, detail, prev_hash, hash";

    private final Jdbi jdbi;

    /** {@code jdbi} reaches the agent's SQLite database (see the agent store), whose schema holds the tables. */
    public AuditLog(Jdbi jdbi) {
        this.jdbi = jdbi;
    }

    /** Appends in the caller's transaction, so the record commits or rolls back with the change it describes. */
    public AuditRecord append(Handle handle, AuditEntry entry) {
        if (!handle.isInTransaction()) {
            throw new IllegalStateException("audit records are appended inside a transaction");
        }
        AuditHead head = head(handle).orElse(new AuditHead(0, ChainHash.GENESIS));
        long seq = head.seq() + 1;
        Instant time = Instant.now().truncatedTo(ChronoUnit.MILLIS);
        String hash = ChainHash.of(seq, time, entry, head.hash());
        handle.createUpdate("INSERT INTO audit (" + COLUMNS + ") VALUES "
                        + "(:seq, :time, :actor, :action, :target, :decision, :detail, :prev, :hash)")
                .bind("seq", seq)
                .bind("time", time.toEpochMilli())
                .bind("actor", entry.actor())
                .bind("action", entry.action())
                .bind("target", entry.target())
                .bind("decision", ChainHash.decisionText(entry.decision()))
                .bind("detail", entry.detail())
                .bind("prev", head.hash())
                .bind("hash", hash)
                .execute();
        handle.createUpdate("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash) "
                        + "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash")
                .bind("seq", seq)
                .bind("hash", hash)
                .execute();
        return new AuditRecord(seq, time, entry, head.hash(), hash);
    }

    /** Appends on its own, for decisions that change no state (denials, allowed reads). */
    public AuditRecord append(AuditEntry entry) {
        return jdbi.inTransaction(handle -> append(handle, entry));
    }

    /** The separately kept last seq and hash; empty before the first record. Export it to anchor the chain. */
    public Optional<AuditHead> head() {
        return jdbi.withHandle(AuditLog::head);
    }

    /** Up to {@code limit} records after {@code afterSeq}, in order. */
    public List<AuditRecord> records(long afterSeq, int limit) {
        return jdbi.withHandle(handle -> handle.createQuery(
                        "SELECT " + COLUMNS + " FROM audit WHERE seq > :after ORDER BY seq LIMIT :limit")
                .bind("after", afterSeq)
                .bind("limit", limit)
                .map(AuditLog::record)
                .list());
    }

    /** Walks the whole chain and compares its end with the head, both from one snapshot; appends go on meanwhile. */
    public AuditVerification verify() {
        return verify(new ChainVerifier(null));
    }

    /** Like {@link #verify()}, and the chain must still contain {@code anchor}, a head exported earlier. */
    public AuditVerification verify(AuditHead anchor) {
        return verify(new ChainVerifier(anchor));
    }

    private AuditVerification verify(ChainVerifier verifier) {
        return inSnapshot(handle -> {
            try (var records = handle.createQuery("SELECT " + COLUMNS + " FROM audit ORDER BY seq")
                    .map(AuditLog::record).iterator()) {
                while (records.hasNext() && verifier.accept(records.next())) {
                    // accept() records the first break
                }
            }
            return verifier.finish(head(handle), true);
        });
    }

    /**
     * Writes the whole chain as JSON lines (one record per line: seq, time, actor, action, target, decision, detail,
     * prev_hash, hash), from one consistent snapshot, for storage off the host. Returns the number of records.
     */
    public long export(Path file) throws IOException {
        return inSnapshot(handle -> {
            long count = 0;
            try (BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8);
                 var records = handle.createQuery("SELECT " + COLUMNS + " FROM audit ORDER BY seq")
                         .map(AuditLog::record).iterator()) {
                while (records.hasNext()) {
                    out.write(JSON.writeValueAsString(toJson(records.next())));
                    out.write('\n');
                    count++;
                }
            }
            return count;
        });
    }

    /** Checks an exported file on its own: the same chain checks as {@link #verify()}, without the head table. */
    public static AuditVerification verifyExport(Path file) throws IOException {
        return verifyExport(file, null);
    }

    /** Like {@link #verifyExport(Path)}, and the export must contain {@code anchor} (null: no anchor). */
    public static AuditVerification verifyExport(Path file, AuditHead anchor) throws IOException {
        ChainVerifier verifier = new ChainVerifier(anchor);
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            long lineNumber = 0;
            for (String line; (line = in.readLine()) != null; ) {
                lineNumber++;
                if (!verifier.accept(fromJson(line, file, lineNumber))) {
                    break;
                }
            }
        }
        return verifier.finish(Optional.empty(), false);
    }

    /**
     * Runs {@code work} in a DEFERRED transaction: reads from one consistent WAL snapshot without taking the write
     * lock (the store begins its transactions IMMEDIATE), so a long walk never makes appends time out.
     */
    private <T, X extends Exception> T inSnapshot(HandleCallback<T, X> work) throws X {
        try (Handle handle = jdbi.open()) {
            SQLiteConnectionConfig config = unwrap(handle).getConnectionConfig();
            SQLiteConfig.TransactionMode mode = config.getTransactionMode();
            config.setTransactionMode(SQLiteConfig.TransactionMode.DEFERRED);
            try {
                return handle.inTransaction(work);
            } finally {
                config.setTransactionMode(mode);
            }
        }
    }

    private static SQLiteConnection unwrap(Handle handle) {
        try {
            return handle.getConnection().unwrap(SQLiteConnection.class);
        } catch (SQLException e) {
            throw new IllegalStateException("the audit log needs a SQLite connection", e);
        }
    }

    private static Optional<AuditHead> head(Handle handle) {
        return handle.createQuery("SELECT seq, hash FROM audit_head WHERE id = 1")
                .map((rs, ctx) -> new AuditHead(rs.getLong("seq"), rs.getString("hash")))
                .findOne();
    }

    private static AuditRecord record(ResultSet rs, StatementContext ctx) throws SQLException {
        AuditEntry entry = new AuditEntry(rs.getString("actor"), rs.getString("action"), rs.getString("target"),
                decision(rs.getString("decision")), rs.getString("detail"));
        return new AuditRecord(rs.getLong("seq"), Instant.ofEpochMilli(rs.getLong("time")), entry,
                rs.getString("prev_hash"), rs.getString("hash"));
    }

    private static AuditEntry.Decision decision(String text) {
        return AuditEntry.Decision.valueOf(text.toUpperCase(Locale.ROOT));
    }

    private static ObjectNode toJson(AuditRecord record) {
        AuditEntry entry = record.entry();
        return JSON.createObjectNode()
                .put("seq", record.seq())
                .put("time", record.time().toString())
                .put("actor", entry.actor())
                .put("action", entry.action())
                .put("target", entry.target())
                .put("decision", ChainHash.decisionText(entry.decision()))
                .put("detail", entry.detail())
                .put("prev_hash", record.prevHash())
                .put("hash", record.hash());
    }

    private static AuditRecord fromJson(String line, Path file, long lineNumber) throws IOException {
        try {
            JsonNode node = JSON.readTree(line);
            JsonNode detail = node.path("detail");
            AuditEntry entry = new AuditEntry(text(node, "actor"), text(node, "action"), text(node, "target"),
                    decision(text(node, "decision")), detail.isNull() ? null : text(node, "detail"));
            JsonNode seq = node.path("seq");
            if (!seq.canConvertToLong() || !seq.isIntegralNumber()) {
                throw new IllegalArgumentException("no integer field 'seq'");
            }
            return new AuditRecord(seq.asLong(), Instant.parse(text(node, "time")), entry,
                    text(node, "prev_hash"), text(node, "hash"));
        } catch (IOException | RuntimeException e) {
            throw new IOException(file + " line " + lineNumber + " is not an audit record: " + e.getMessage(), e);
        }
    }

    private static String text(JsonNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || !value.isTextual()) {
            throw new IllegalArgumentException("no text field '" + field + "'");
        }
        return value.asText();
    }
}
