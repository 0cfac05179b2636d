package io.veggur.agent.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/** A client of the agent's REST API: JSON in, JSON out; an error answer becomes an {@link AgentException}. */
public final class AgentClient {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Long enough for a VM boot or an environment build under TCG, and a command run in an environment. */
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

    /** A path segment, percent-encoded: names are checked by the agent, not trusted to be URL-safe here. */
    public static String segment(String text) {
        return URLEncoder.encode(text, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** {@code owner/name} as the two path segments of a VM, e.g. {@code /v1/vms/alice/web}. */
    public static String vmPath(String owner, String name) {
        return "/v1/vms/" + segment(owner) + "/" + segment(name);
    }

    private JsonNode send(String method, String path, JsonNode body) throws IOException {
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
        HttpResponse<byte[]> response;
        try {
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (ConnectException e) {
            throw new IOException("the agent at " + base + " does not answer (is `veggur agent start` running?)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the agent", e);
        }
        JsonNode answer = response.body().length == 0 ? JSON.createObjectNode() : parse(response.body());
        if (response.statusCode() >= 400) {
            throw new AgentException(response.statusCode(), answer.path("error").asText("HTTP " + response.statusCode()));
        }
        return answer;
    }

    private static JsonNode parse(byte[] body) throws IOException {
        try {
            return JSON.readTree(body);
        } catch (IOException e) {
            throw new IOException("the agent sent something that is not JSON", e);
        }
    }
}
