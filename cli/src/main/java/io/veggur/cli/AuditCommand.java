package io.veggur.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.audit.AuditHead;
import io.veggur.agent.audit.AuditLog;
import io.veggur.agent.audit.AuditVerification;
import io.veggur.agent.store.AgentStore;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code veggur audit verify|export|show}: the agent's hash-chained audit log. */
@Command(name = "audit", description = "Verify, export or show the agent's audit log.", mixinStandardHelpOptions = true,
        subcommands = {AuditCommand.Verify.class, AuditCommand.Export.class, AuditCommand.Show.class})
final class AuditCommand {
    static Path database(Path given) throws NoSuchFileException {
        Path file = given != null ? given : AgentConnection.agentDirectory().resolve("agent.db");
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no agent database");
        }
        return file;
    }

    @Command(name = "verify", description = "Walk the whole chain (in the agent's database, or an export) and check "
            + "every record's hash and link; exit 1 at the first break.")
    static final class Verify implements Callable<Integer> {
        @Option(names = "--db", paramLabel = "FILE", description = "The agent database (default: $VEGGUR_HOME/agent/agent.db).") Path db;
        @Option(names = "--export", paramLabel = "FILE", description = "Verify an exported file instead.") Path export;
        @Option(names = "--anchor", paramLabel = "SEQ:HASH", description = "A head written down earlier that the chain must still contain.") String anchor;

        @Override
        public Integer call() throws Exception {
            AuditHead head = anchor == null ? null : parseAnchor(anchor);
            AuditVerification result;
            if (export != null) {
                result = AuditLog.verifyExport(export, head);
            } else {
                try (AgentStore store = AgentStore.open(database(db))) {
                    result = head == null ? store.audit().verify() : store.audit().verify(head);
                }
            }
            if (result.intact()) {
                System.out.println("audit log intact: " + result.recordsChecked() + " records");
                return 0;
            }
            var broken = result.firstBreak().orElseThrow();
            System.out.println("audit log BROKEN at record " + broken.seq() + " (" + broken.kind() + "): " + broken.message()
                    + "; " + result.recordsChecked() + " records before it are intact");
            return 1;
        }

        private static AuditHead parseAnchor(String text) {
            int colon = text.indexOf(':');
            try {
                return new AuditHead(Long.parseLong(text.substring(0, colon)), text.substring(colon + 1));
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("--anchor takes SEQ:HASH, got '" + text + "'");
            }
        }
    }

    @Command(name = "export", description = "Write the chain as JSON lines, and print its head (SEQ:HASH) to keep elsewhere.")
    static final class Export implements Callable<Integer> {
        @Option(names = "--db", paramLabel = "FILE") Path db;
        @Option(names = "--out", required = true, paramLabel = "FILE") Path out;

        @Override
        public Integer call() throws Exception {
            try (AgentStore store = AgentStore.open(database(db))) {
                long count = store.audit().export(out);
                AuditHead head = store.audit().head().orElse(null);
                System.out.println("exported " + count + " records" + (head == null ? "" : "; head " + head.seq() + ":" + head.hash()));
            }
            return 0;
        }
    }

    @Command(name = "show", description = "Show audit records through the agent (operator token).")
    static final class Show implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Option(names = "--after", defaultValue = "0", paramLabel = "SEQ") long after;
        @Option(names = "--limit", defaultValue = "1000") int limit;
        @Option(names = "--denied", description = "Only refusals.") boolean denied;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            JsonNode records = connection.client().get("/v1/audit?after=" + after + "&limit=" + limit);
            for (JsonNode record : records) {
                if (denied && !record.path("decision").asText().equals("denied")) {
                    continue;
                }
                if (json) {
                    System.out.println(Json.write(record));
                } else {
                    System.out.printf("%6d %s %-7s %-16s %-22s %-28s %s%n", record.path("seq").asLong(),
                            record.path("time").asText(), record.path("decision").asText(), record.path("actor").asText(),
                            record.path("action").asText(), record.path("target").asText(),
                            record.path("detail").isNull() ? "" : record.path("detail").asText());
                }
            }
            return 0;
        }
    }
}
