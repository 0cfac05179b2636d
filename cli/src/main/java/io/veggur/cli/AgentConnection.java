package io.veggur.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.client.AgentClient;
import io.veggur.host.vm.VeggurHome;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * Where the agent is and who is asking. The agent: {@code --agent}, else {@code $VEGGUR_AGENT}, else the address the
 * local agent wrote to {@code $VEGGUR_HOME/agent/agent.json}, else {@value #DEFAULT_URL}. The bearer token:
 * {@code --token-file}, else {@code $VEGGUR_TOKEN}, else {@code $VEGGUR_TOKEN_FILE}, else the local operator token
 * (readable by root only).
 */
final class AgentConnection {
    static final String DEFAULT_URL = "http://127.0.0.1:7317";

    @Option(names = "--agent", paramLabel = "URL", description = "The agent's API (default: the local agent).")
    String agent;

    @Option(names = "--token-file", paramLabel = "FILE", description = "A file holding your bearer token.")
    Path tokenFile;

    AgentClient client() throws IOException {
        return new AgentClient(URI.create(url()), token());
    }

    private String url() throws IOException {
        if (agent != null) {
            return agent;
        }
        String fromEnvironment = System.getenv("VEGGUR_AGENT");
        if (fromEnvironment != null && !fromEnvironment.isBlank()) {
            return fromEnvironment;
        }
        Path written = agentDirectory().resolve("agent.json");
        if (Files.isReadable(written)) {
            JsonNode address = Json.MAPPER.readTree(written.toFile());
            return address.path("url").asText(DEFAULT_URL);
        }
        return DEFAULT_URL;
    }

    private String token() throws IOException {
        if (tokenFile != null) {
            return readToken(tokenFile);
        }
        String token = System.getenv("VEGGUR_TOKEN");
        if (token != null && !token.isBlank()) {
            return token.trim();
        }
        String file = System.getenv("VEGGUR_TOKEN_FILE");
        if (file != null && !file.isBlank()) {
            return readToken(Path.of(file));
        }
        Path operator = agentDirectory().resolve("operator.token");
        return Files.isReadable(operator) ? readToken(operator) : null;
    }

    private static String readToken(Path file) throws IOException {
        if (Files.size(file) > 4096) {
            throw new IOException("token file " + file + " is too large to hold a token");
        }
        return Files.readString(file, StandardCharsets.UTF_8).trim();
    }

    static Path agentDirectory() {
        return VeggurHome.fromEnvironment().root().resolve("agent");
    }

    /** {@code owner/name}, or {@code name} for one of the caller's own VMs (the agent resolves the owner). */
    static String vmPath(String vm) {
        int slash = vm.indexOf('/');
        if (slash < 0) {
            return "/v1/vms/~/" + AgentClient.segment(vm);
        }
        return AgentClient.vmPath(vm.substring(0, slash), vm.substring(slash + 1));
    }
}
