package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.client.AgentClient;
import io.veggur.agent.environment.ContainerEnvironments;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A real agent (started with {@code veggur agent start}, so a separate, detached process) in a throw-away Veggur
 * home, with the private dockerd. Closing stops every VM it left and deletes the home.
 */
final class TestAgent implements AutoCloseable {
    final Path home;
    final TestDocker.Setup docker;
    private JsonNode address;

    private TestAgent(Path home, TestDocker.Setup docker) {
        this.home = home;
        this.docker = docker;
    }

    private List<String> options = List.of();

    /** {@code options} are more {@code agent start} options, used by every start. */
    static TestAgent start(String... options) throws Exception {
        TestAgent agent = new TestAgent(Files.createTempDirectory("vgit-"), TestDocker.get());
        agent.options = List.of(options);
        agent.startAgain();
        return agent;
    }

    Map<String, String> environment() throws IOException, InterruptedException {
        return Map.of("VEGGUR_DOCKER_HOST", docker.dockerHost(), "VEGGUR_IMAGE", docker.image(),
                "VEGGUR_MONITOR_IMAGE", TestDocker.monitorImage().toString());
    }

    /** Starts the agent process (again, after a stop or a kill) and waits until its API answers. */
    void startAgain() throws Exception {
        List<String> arguments = new ArrayList<>(List.of("agent", "start", "--listen", "127.0.0.1:0"));
        arguments.addAll(options);
        Cli.Result started = cli(arguments.toArray(String[]::new));
        assertThat(started.exitCode()).as(started.stderr()).isZero();
        address = Json.MAPPER.readTree(home.resolve("agent/agent.json").toFile());
    }

    Cli.Result cli(String... args) throws IOException, InterruptedException {
        return Cli.run(home, environment(), args);
    }

    /** A CLI run with a tenant's token. */
    Cli.Result as(String token, String... args) throws IOException, InterruptedException {
        return Cli.run(home, Map.of("VEGGUR_TOKEN", token, "VEGGUR_AGENT", url()), args);
    }

    /** {@link #as}, returning at once, for output a test follows as it comes. */
    Process startAs(String token, String... args) throws IOException {
        return Cli.startIn(null, home, Map.of("VEGGUR_TOKEN", token, "VEGGUR_AGENT", url()), args);
    }

    String url() {
        return address.path("url").asText();
    }

    long pid() {
        return address.path("pid").asLong();
    }

    String operatorToken() throws IOException {
        return Files.readString(home.resolve("agent/operator.token")).trim();
    }

    AgentClient client(String token) {
        return new AgentClient(URI.create(url()), token);
    }

    AgentClient operator() throws IOException {
        return client(operatorToken());
    }

    /** The audit records with this decision ("allowed" or "denied"), oldest first, as the operator reads them. */
    List<JsonNode> audit(String decision) throws IOException {
        List<JsonNode> result = new ArrayList<>();
        operator().get("/v1/audit?limit=10000").forEach(record -> {
            if (record.path("decision").asText().equals(decision)) {
                result.add(record);
            }
        });
        return result;
    }

    String createTenant(String name) throws IOException {
        return operator().post("/v1/tenants", Json.MAPPER.createObjectNode().put("name", name)).path("token").asText();
    }

    /** The host-side VM whose supervisor serves the VM id an environment reports. */
    VmInfo hostVm(String vmId) throws IOException {
        return new VmManager(new VeggurHome(home)).list().stream().filter(info -> info.id().equals(vmId)).findFirst()
                .orElseThrow(() -> new AssertionError("no host VM with id " + vmId));
    }

    void kill9() throws InterruptedException {
        ProcessHandle process = ProcessHandle.of(pid()).orElseThrow();
        process.destroyForcibly();
        process.onExit().join();
    }

    @Override
    public void close() throws Exception {
        try {
            cli("agent", "stop");
        } finally {
            VmManager manager = new VmManager(new VeggurHome(home));
            for (VmInfo vm : manager.list()) {
                manager.stop(vm.name());
            }
            String agentId = ContainerEnvironments.agentId(new VeggurHome(home));
            for (String id : TestDocker.docker("ps", "-aq", "--filter", "label=" + ContainerEnvironments.AGENT_LABEL + "="
                    + agentId).lines().toList()) {
                TestDocker.docker("rm", "-f", id.trim());
            }
            try (Stream<Path> files = Files.walk(home)) {
                files.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
            }
        }
    }
}
