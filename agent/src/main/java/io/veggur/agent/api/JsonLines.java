package io.veggur.agent.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;

/**
 * An answer sent as JSON lines (application/x-ndjson), each flushed as it is written so the client sees it at once;
 * empty lines may come between them (keep-alives, which readers skip).
 * Writes are serialised. The first failed write marks the stream broken (the client left) and every later write fails
 * at once. Helidon reports a peer that is gone with unchecked exceptions (ServerConnectionException, or an
 * UncheckedIOException); they become IOExceptions here, as {@link io.veggur.agent.exec.ExecOutput} promises.
 */
final class JsonLines implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final OutputStream out;
    private boolean broken;

    JsonLines(OutputStream out) {
        this.out = out;
    }

    synchronized void write(JsonNode line) throws IOException {
        writeLine(JSON.writeValueAsBytes(line));
    }

    /** An empty line, which readers skip: only to find out whether the client is still there. */
    synchronized void blank() throws IOException {
        writeLine(new byte[0]);
    }

    private void writeLine(byte[] bytes) throws IOException {
        if (broken) {
            throw new IOException("the client left");
        }
        try {
            out.write(bytes);
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            broken = true;
            throw e;
        } catch (RuntimeException e) {
            broken = true;
            throw new IOException("the client left: " + e.getMessage(), e);
        }
    }

    /** A last line {@code {"error": message}}, unless the client has left. */
    synchronized void error(String message) {
        try {
            write(JSON.createObjectNode().put("error", message));
        } catch (IOException e) {
            // the client left; it cannot be told
        }
    }

    synchronized boolean broken() {
        return broken;
    }

    @Override
    public synchronized void close() throws IOException {
        try {
            out.close();
        } catch (RuntimeException e) {
            throw new IOException("the client left: " + e.getMessage(), e);
        }
    }
}
