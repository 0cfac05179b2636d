package io.veggur.agent.store;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.concurrent.BlockingDeque;
import java.util.concurrent.LinkedBlockingDeque;
import javax.sql.DataSource;
import org.jdbi.v3.core.ConnectionFactory;

/**
 * Keeps up to {@value #MAX_IDLE} open SQLite connections for reuse. Opening one costs milliseconds (file, WAL index,
 * pragmas), and closing the last one checkpoints the WAL into the database with fsyncs; a kept connection makes a
 * read cost tens of microseconds. Connections beyond the idle limit are opened on demand and closed after use, so
 * concurrency is never limited here (SQLite itself serializes writers).
 *
 * <p>A connection is handed to one Jdbi handle at a time; it comes back in auto-commit mode (Jdbi restores it) or
 * is rolled back and closed.
 */
final class ConnectionPool implements ConnectionFactory, AutoCloseable {
    private static final int MAX_IDLE = 8;

    private final DataSource source;
    private final BlockingDeque<Connection> idle = new LinkedBlockingDeque<>(MAX_IDLE);
    private volatile boolean closed;

    ConnectionPool(DataSource source) {
        this.source = source;
    }

    @Override
    public Connection openConnection() throws SQLException {
        if (closed) {
            throw new SQLException("the agent store is closed");
        }
        Connection connection = idle.pollFirst();
        return connection != null ? connection : source.getConnection();
    }

    @Override
    public void closeConnection(Connection connection) throws SQLException {
        if (closed || !connection.getAutoCommit() || !idle.offerFirst(connection)) {
            connection.close(); // an open transaction is rolled back by close
        }
    }

    @Override
    public void close() throws SQLException {
        closed = true;
        for (Connection connection; (connection = idle.pollFirst()) != null; ) {
            connection.close();
        }
    }
}
