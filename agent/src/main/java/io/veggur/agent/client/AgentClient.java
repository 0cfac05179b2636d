package io.veggur.agent.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;

/**
 * A client of the agent's REST API: JSON in, JSON (or JSON lines) out; an error answer becomes an
 * {@link AgentException}.
 */
public final class AgentClient {
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * Until the answer begins: long enough for a VM boot or an environment build under TCG (a streamed answer
     * begins at once and may then run for as long as it needs).
     */
    private static final Duration REQUEST_TIMEOUT = Duration.ofMinutes(15);

    private final URI base;
    private final String token;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    public AgentClient(URI base, String token) {
        this.base = base;
        this.token = token;
    }

    public ObjectNode json() {
        return JSON.createObjectNode();
    }

    public JsonNode get(String path) throws IOException {
        return send("GET", path, null);
    }

    public JsonNode post(String path, JsonNode body) throws IOException {
        return send("POST", path, body);
    }

    public JsonNode put(String path, JsonNode body) throws IOException {
        return send("PUT", path, body);
    }

    public JsonNode delete(String path) throws IOException {
        return send("DELETE", path, null);
    }

    /** How a command run in an environment ended (see {@link #exec}). */
    public record ExecEnded(int exitCode, boolean timedOut, boolean truncated) {}

    /**
     * Runs {@code argv} in the caller's environment for the VM at {@code vmPath} (see {@link #vmPath}) and writes its
     * output to {@code stdout} and {@code stderr} as the agent streams it in.
     */
    public ExecEnded exec(String vmPath, List<String> argv, long timeoutSeconds, OutputStream stdout,
                          OutputStream stderr) throws IOException {
        ObjectNode body = json().put("timeoutSeconds", timeoutSeconds);
        argv.forEach(body.putArray("argv")::add);
        ExecEnded[] ended = new ExecEnded[1];
        postForLines(vmPath + "/environment/exec", body, line -> {
            if (line.has("error")) {
                throw new IOException(line.path("error").asText());
            } else if (line.has("stdout")) {
                write(stdout, line.path("stdout").binaryValue());
            } else if (line.has("stderr")) {
                write(stderr, line.path("stderr").binaryValue());
            } else if (line.has("exitCode")) {
                ended[0] = new ExecEnded(line.path("exitCode").asInt(), line.path("timedOut").asBoolean(),
                        line.path("truncated").asBoolean());
            }
        });
        if (ended[0] == null) {
            throw new IOException("the agent ended the answer before the command's exit status");
        }
        return ended[0];
    }

    private static void write(OutputStream stream, byte[] bytes) throws IOException {
        stream.write(bytes);
        stream.flush();
    }

    /** Takes one line of a streamed answer. */
    @FunctionalInterface
    private interface LineHandler {
        void accept(JsonNode line) throws IOException;
    }

    /**
     * POSTs {@code body} and hands each line of the streamed answer (application/x-ndjson) to {@code handler} as it
     * arrives, until the agent ends the answer.
     */
    private void postForLines(String path, JsonNode body, LineHandler handler) throws IOException {
        HttpResponse<InputStream> response = exchange("POST", path, body, HttpResponse.BodyHandlers.ofInputStream());
        try (InputStream in = response.body()) {
            if (response.statusCode() >= 400) {
                throw failure(response.statusCode(), in.readAllBytes());
            }
            BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line; (line = lines.readLine()) != null; ) {
                if (!line.isBlank()) {
                    handler.accept(parse(line.getBytes(StandardCharsets.UTF_8)));
                }
            }
        }
    }

    /**
     * Writes the identity a TLS network environment's creation answered with (once only) to {@code file}, and its
     * password to FILE.password, where {@code tls://HOST:PORT?identity=FILE} finds them. Both are created 0600 and
     * never replaced: overwriting an identity would lose it.
     */
    public static void writeIdentity(Path file, JsonNode created) throws IOException {
        if (!created.hasNonNull("identity") || !created.hasNonNull("password")) {
            throw new IOException("the environment's answer holds no identity");
        }
        writePrivate(file, created.path("identity").binaryValue());
        writePrivate(Path.of(file + ".password"), (created.path("password").asText() + "\n").getBytes(StandardCharsets.UTF_8));
    }

    private static void writePrivate(Path file, byte[] bytes) throws IOException {
        try {
            Files.write(Files.createFile(file, PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rw-------"))), bytes);
        } catch (FileAlreadyExistsException e) {
            throw new IOException(file + " exists already; the identity was not written (delete the environment"
                    + " and create it again with another file)");
        }
    }

    /** A path segment, percent-encoded: names are checked by the agent, not trusted to be URL-safe here. */
    public static String segment(String text) {
        return URLEncoder.encode(text, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** {@code owner/name} as the two path segments of a VM, e.g. {@code /v1/vms/alice/web}. */
    public static String vmPath(String owner, String name) {
        return "/v1/vms/" + segment(owner) + "/" + segment(name);
    }

    private JsonNode send(String method, String path, JsonNode body) throws IOException {
        HttpResponse<byte[]> response = exchange(method, path, body, HttpResponse.BodyHandlers.ofByteArray());
        if (response.statusCode() >= 400) {
            throw failure(response.statusCode(), response.body());
        }
        return response.body().length == 0 ? JSON.createObjectNode() : parse(response.body());
    }

    private <T> HttpResponse<T> exchange(String method, String path, JsonNode body, HttpResponse.BodyHandler<T> handler)
            throws IOException {
        HttpRequest.Builder request = HttpRequest.newBuilder(base.resolve(path))
                .timeout(REQUEST_TIMEOUT)
                .header("Accept", "application/json")
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
        if (body != null) {
            request.header("Content-Type", "application/json");
        }
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        try {
            return http.send(request.build(), handler);
        } catch (ConnectException e) {
            throw new IOException("the agent at " + base + " does not answer (is `veggur agent start` running?)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the agent", e);
        }
    }

    private static AgentException failure(int status, byte[] body) throws IOException {
        JsonNode answer = body.length == 0 ? JSON.createObjectNode() : parse(body);
        return new AgentException(status, answer.path("error").asText("HTTP " + status));
    }

    private static JsonNode parse(byte[] body) throws IOException {
        try {
            return JSON.readTree(body);
        } catch (IOException e) {
            throw new IOException("the agent sent something that is not JSON", e);
        }
    }
}
