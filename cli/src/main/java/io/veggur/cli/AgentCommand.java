package io.veggur.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.Agent;
import io.veggur.host.vm.VeggurHome;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code veggur agent run|start|stop|status}: the host agent (root). */
@Command(name = "agent", description = "Run, start, stop or check the host agent.", mixinStandardHelpOptions = true,
        subcommands = {AgentCommand.Run.class, AgentCommand.Start.class, AgentCommand.Stop.class, AgentCommand.Status.class})
final class AgentCommand {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(30);

    /** How the agent serves: shared by run and start. */
    static final class ServeOptions {
        @Option(names = "--listen", defaultValue = "127.0.0.1:7317", paramLabel = "HOST:PORT",
                description = "Where the API listens (port 0: any free port). Default: ${DEFAULT-VALUE}.")
        String listen;

        @Option(names = "--docker-host", paramLabel = "URL",
                description = "The private dockerd (default: $VEGGUR_DOCKER_HOST, else unix://$VEGGUR_HOME/docker/docker.sock).")
        String dockerHost;

        @Option(names = "--image", paramLabel = "TAG",
                description = "The tools image for container environments (default: $VEGGUR_IMAGE, else the newest built).")
        String image;

        @Option(names = "--endpoint-address", defaultValue = "127.0.0.1", paramLabel = "ADDRESS",
                description = "Where network environments listen (0.0.0.0 or :: for every interface). Default: ${DEFAULT-VALUE}.")
        String endpointAddress;

        @Option(names = "--monitor-image", paramLabel = "DIR",
                description = "The monitoring VM image for vm environments, from monitor/build-image.sh (default: "
                        + "$VEGGUR_MONITOR_IMAGE; without one the vm flavor is not offered).")
        Path monitorImage;

        Agent.Options options() {
            int colon = listen.lastIndexOf(':');
            if (colon <= 0) {
                throw new IllegalArgumentException("--listen takes HOST:PORT, got '" + listen + "'");
            }
            int port;
            try {
                port = Integer.parseInt(listen.substring(colon + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--listen takes HOST:PORT, got '" + listen + "'");
            }
            VeggurHome home = VeggurHome.fromEnvironment();
            String docker = firstOf(dockerHost, System.getenv("VEGGUR_DOCKER_HOST"))
                    .orElse("unix://" + home.root().resolve("docker").resolve("docker.sock"));
            InetAddress endpoint;
            if (!endpointAddress.matches("[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*")) {
                throw new IllegalArgumentException("--endpoint-address takes an IP address, got '" + endpointAddress + "'");
            }
            try {
                endpoint = InetAddress.getByName(endpointAddress);   // a literal: no name lookup
            } catch (UnknownHostException e) {
                throw new IllegalArgumentException("--endpoint-address takes an IP address, got '" + endpointAddress + "'");
            }
            return new Agent.Options(home, listen.substring(0, colon).replaceAll("^\\[|]$", ""), port, docker,
                    firstOf(image, System.getenv("VEGGUR_IMAGE")).orElse(null), endpoint,
                    firstOf(monitorImage == null ? null : monitorImage.toString(), System.getenv("VEGGUR_MONITOR_IMAGE"))
                            .map(Path::of).map(Path::toAbsolutePath).orElse(null));
        }

        List<String> arguments() {
            List<String> arguments = new ArrayList<>(List.of("--listen", listen, "--endpoint-address", endpointAddress));
            if (dockerHost != null) {
                arguments.addAll(List.of("--docker-host", dockerHost));
            }
            if (image != null) {
                arguments.addAll(List.of("--image", image));
            }
            if (monitorImage != null) {
                arguments.addAll(List.of("--monitor-image", monitorImage.toAbsolutePath().toString()));
            }
            return arguments;
        }
    }

    @Command(name = "run", description = "Run the agent in the foreground until SIGTERM or SIGINT.")
    static final class Run implements Callable<Integer> {
        @Mixin ServeOptions serve;

        @Override
        public Integer call() throws Exception {
            Agent agent = Agent.start(serve.options());
            CountDownLatch stopped = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                agent.close();
                stopped.countDown();
            }));
            System.out.println("veggur agent serving on " + agent.url());
            System.out.flush();
            stopped.await();
            return 0;
        }
    }

    @Command(name = "start", description = "Start the agent in the background; returns once its API answers.")
    static final class Start implements Callable<Integer> {
        @Mixin ServeOptions serve;

        @Override
        public Integer call() throws Exception {
            Optional<JsonNode> running = runningAgent(AgentConnection.agentDirectory());
            if (running.isPresent()) {
                System.out.println("the agent is already running at " + running.get().path("url").asText());
                return 0;
            }
            JsonNode started = startDetached(VeggurHome.fromEnvironment().root(), serve.arguments());
            System.out.println("agent started at " + started.path("url").asText() + " (pid " + started.path("pid").asLong()
                    + ", log " + VeggurHome.fromEnvironment().root().resolve("agent/agent.log") + ")");
            return 0;
        }
    }

    /**
     * Starts {@code veggur agent run} for the Veggur home {@code home} as a detached process (its own session, output
     * to {@code agent/agent.log}) and returns its agent.json once its API answers.
     */
    static JsonNode startDetached(Path home, List<String> serveArguments) throws IOException, InterruptedException {
        Path directory = VeggurHome.privateDirectory(home.resolve("agent"));
        Files.deleteIfExists(directory.resolve("agent.json"));
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of("setsid", java, "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-XX:+UseSerialGC", "-Xmx512m",
                "-cp", System.getProperty("java.class.path"), VeggurCommand.class.getName(), "agent", "run"));
        command.addAll(serveArguments);
        Path log = directory.resolve("agent.log");
        ProcessBuilder builder = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
        builder.environment().put("VEGGUR_HOME", home.toString());
        Process process = builder.start();
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            Optional<JsonNode> started = runningAgent(directory);
            if (started.isPresent()) {
                return started.get();
            }
            if (!process.isAlive()) {
                throw new IOException("the agent exited with status " + process.exitValue() + ": " + lastLine(log));
            }
            Thread.sleep(50);
        }
        process.destroy();
        throw new IOException("the agent did not answer within " + START_TIMEOUT.toSeconds() + " s (see " + log + ")");
    }

    @Command(name = "stop", description = "Stop the background agent (VMs and environments keep running).")
    static final class Stop implements Callable<Integer> {
        @Override
        public Integer call() throws Exception {
            System.out.println(stop(AgentConnection.agentDirectory()) ? "agent stopped" : "the agent is not running");
            return 0;
        }
    }

    @Command(name = "status", description = "Say whether the local agent runs and answers; exit 3 if not.")
    static final class Status implements Callable<Integer> {
        @Override
        public Integer call() throws Exception {
            Optional<JsonNode> running = runningAgent(AgentConnection.agentDirectory());
            if (running.isEmpty()) {
                System.out.println("the agent is not running");
                return 3;
            }
            System.out.println("the agent is running at " + running.get().path("url").asText() + " (pid "
                    + running.get().path("pid").asLong() + ")");
            return 0;
        }
    }

    /** Stops the agent whose files are in {@code agentDirectory} (SIGTERM, then waits); false if none runs. */
    static boolean stop(Path agentDirectory) throws IOException, InterruptedException, ExecutionException {
        Optional<JsonNode> running = runningAgent(agentDirectory);
        if (running.isEmpty()) {
            return false;
        }
        ProcessHandle agent = ProcessHandle.of(running.get().path("pid").asLong()).orElseThrow();
        agent.destroy();
        try {
            agent.onExit().get(STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new IOException("the agent (pid " + agent.pid() + ") did not stop within " + STOP_TIMEOUT.toSeconds() + " s");
        }
        return true;
    }

    /** The agent.json in {@code agentDirectory}, if its process is alive and its API answers /v1/health. */
    static Optional<JsonNode> runningAgent(Path agentDirectory) {
        Path file = agentDirectory.resolve("agent.json");
        try {
            if (!Files.isReadable(file)) {
                return Optional.empty();
            }
            JsonNode address = Json.MAPPER.readTree(file.toFile());
            if (ProcessHandle.of(address.path("pid").asLong()).filter(ProcessHandle::isAlive).isEmpty()) {
                return Optional.empty();
            }
            HttpResponse<Void> health = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build()
                    .send(HttpRequest.newBuilder(URI.create(address.path("url").asText() + "/v1/health"))
                            .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.discarding());
            return health.statusCode() == 200 ? Optional.of(address) : Optional.empty();
        } catch (IOException | IllegalArgumentException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }

    private static String lastLine(Path log) throws IOException {
        List<String> lines = Files.readAllLines(log);
        return lines.isEmpty() ? "(no output)" : lines.getLast();
    }

    private static Optional<String> firstOf(String... candidates) {
        for (String candidate : candidates) {
            if (candidate != null && !candidate.isBlank()) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }
}
