package io.veggur.agent.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AgentStoreMigrationTest {
    @TempDir
    Path directory;

    @Test
    void open_freshFile_createsPrivateWalDatabaseWithEveryTable() throws Exception {
        Path file = directory.resolve("agent.db");

        AgentStore.open(file).close();

        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
        try (Connection connection = DriverManager.getConnection("jdbc:sqlite:" + file)) {
            assertThat(single(connection, "PRAGMA journal_mode")).isEqualTo("wal");
            assertThat(single(connection, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema "
                    + "WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'flyway%' ORDER BY name)"))
                    .isEqualTo("audit,audit_head,environments,grants,operator_token,refusal_cursors,tenants,vms");
            assertThat(single(connection, "SELECT count(*) FROM flyway_schema_history WHERE success = 1"))
                    .isEqualTo(Integer.toString(migrations()));
            assertThat(single(connection, "SELECT count(*) FROM pragma_table_info('environments') WHERE name = 'options'"))
                    .as("V3 adds the flavors' options").isEqualTo("1");
        }
    }

    @Test
    void open_existingFile_keepsDataAndAppliesNothingTwice() throws Exception {
        Path file = directory.resolve("agent.db");
        try (AgentStore store = AgentStore.open(file)) {
            store.createTenant("alice");
        }

        try (AgentStore reopened = AgentStore.open(file)) {
            assertThat(reopened.tenants()).extracting(Tenant::name).containsExactly("alice");
            assertThat(reopened.audit().verify().intact()).isTrue();
        }
        try (Connection connection = DriverManager.getConnection("jdbc:sqlite:" + file)) {
            assertThat(single(connection, "SELECT count(*) FROM flyway_schema_history"))
                    .isEqualTo(Integer.toString(migrations()));
        }
    }

    /** The migrations the source tree holds (the test runs in the module's directory). */
    private static int migrations() throws IOException {
        try (Stream<Path> files = Files.list(Path.of("src/main/resources/db/migration"))) {
            return (int) files.filter(f -> f.getFileName().toString().matches("V\\d+__.*\\.sql")).count();
        }
    }

    static String single(Connection connection, String sql) throws SQLException {
        try (Statement statement = connection.createStatement(); ResultSet rs = statement.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }
}
