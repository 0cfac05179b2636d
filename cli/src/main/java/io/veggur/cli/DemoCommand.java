package io.veggur.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.audit.AuditVerification;
import io.veggur.agent.client.AgentClient;
import io.veggur.agent.client.AgentException;
import io.veggur.agent.store.AgentStore;
import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmException;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.os.linux.KernelDiscovery;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code veggur demo}: self-service introspection end to end, each step timed. It starts an agent in a Veggur home of
 * its own ({@code $VEGGUR_HOME/demo}, on a free port), creates tenants alice and bob, boots alice's VM, deploys her
 * container environment and lists the guest's processes inside it, then shows bob refused by the API, by the socket
 * and from a container of his own, then alice's network environment (TLS with her issued identity; plaintext
 * refused) and, when the agent has the monitoring VM image, her monitoring VM. It cleans up unless {@code --keep}.
 */
@Command(name = "demo", description = "Self-service introspection end to end: agent, tenants, VM, container, network and VM environments.")
final class DemoCommand implements Callable<Integer> {
    private static final Duration BOOT_TIMEOUT = Duration.ofSeconds(120);
    private static final String SOCKET = "/vmi/vmi.sock";

    @Option(names = "--keep", description = "Leave the agent, the VMs and the environments running at the end.") boolean keep;

    private long stepStart;
    private Path home;
    private AgentClient operator;
    private URI url;

    @Override
    public Integer call() throws Exception {
        home = VeggurHome.fromEnvironment().root().resolve("demo");
        if (AgentCommand.runningAgent(home.resolve("agent")).isPresent()) {
            throw new IOException("a demo agent is already running in " + home + " (an earlier --keep); stop it with: "
                    + "VEGGUR_HOME=" + home + " veggur agent stop, or remove that directory");
        }
        VeggurHome.deleteTree(home);
        boolean ok = false;
        try {
            run();
            ok = true;
        } finally {
            if (keep && ok) {
                System.out.println("\nLeft running (--keep). Use it as alice:\n  export VEGGUR_HOME=" + home
                        + " VEGGUR_TOKEN_FILE=" + home.resolve("alice.token")
                        + "\n  veggur env exec web -- veggur vmi pstree --socket " + SOCKET
                        + "\nStop everything: veggur vm delete web; VEGGUR_TOKEN_FILE=" + home.resolve("bob.token")
                        + " veggur vm delete lab; veggur agent stop");
            } else {
                cleanUp();
            }
        }
        return 0;
    }

    private void run() throws Exception {
        step("start the host agent (SQLite state, REST API, private dockerd " + System.getenv().getOrDefault("VEGGUR_DOCKER_HOST", "") + ")");
        JsonNode agent = AgentCommand.startDetached(home, List.of("--listen", "127.0.0.1:0"));
        url = URI.create(agent.path("url").asText());
        operator = new AgentClient(url, Files.readString(home.resolve("agent/operator.token")).trim());
        done("agent pid " + agent.path("pid").asLong() + " serving " + url);

        step("the operator creates tenants alice and bob (bearer tokens, stored hashed)");
        AgentClient alice = new AgentClient(url, createTenant("alice"));
        AgentClient bob = new AgentClient(url, createTenant("bob"));
        done("tokens in " + home + "/{alice,bob}.token (0600)");

        step("alice creates VM 'web' (built-in guest, 256 MiB, TCG here) and it boots");
        JsonNode web = alice.post("/v1/vms", Json.MAPPER.createObjectNode().put("name", "web"));
        awaitGuestReady();
        done("alice/web " + web.path("state").asText() + "; the guest's init is up");

        step("alice deploys a container environment for web (role read)");
        JsonNode environment = alice.put("/v1/vms/alice/web/environment",
                Json.MAPPER.createObjectNode().put("flavor", "container").put("role", "read"));
        done(environment.path("flavor").asText() + " environment " + environment.path("state").asText()
                + ": only web's role-bound socket is mounted, at " + SOCKET);

        step("alice runs the process list inside her container (no profile: kallsyms and BTF from guest memory)");
        Output ps = exec(alice, "alice/web", "veggur", "vmi", "ps", "--socket", SOCKET);
        done("exit " + ps.exitCode());
        indent(ps.stdout());

        step("bob asks the API for alice/web: refused exactly as for a VM that does not exist");
        refusedByApi(() -> bob.get("/v1/vms/alice/web"));
        refusedByApi(() -> bob.put("/v1/vms/alice/web/environment", Json.MAPPER.createObjectNode()));
        refusedByApi(() -> bob.get("/v1/vms/alice/no-such-vm"));
        done("");

        step("bob creates his own VM 'lab' and a container for it: alice's socket is absent there");
        bob.post("/v1/vms", Json.MAPPER.createObjectNode().put("name", "lab"));
        bob.put("/v1/vms/bob/lab/environment", Json.MAPPER.createObjectNode());
        String aliceSocket = home.resolve("vms").toString();
        Output look = exec(bob, "bob/lab", "sh", "-c", "echo sockets: $(find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print); "
                + "ls " + aliceSocket + " 2>&1; ls /dev/shm 2>&1; veggur vmi info --socket " + SOCKET + " | head -n 1");
        done("");
        indent(look.stdout() + look.stderr());

        step("alice grants bob 'read' on web; bob's read environment tries to write memory, pause the VM, set a breakpoint");
        alice.put("/v1/vms/alice/web/grants/bob", Json.MAPPER.createObjectNode().put("role", "read"));
        bob.put("/v1/vms/alice/web/environment", Json.MAPPER.createObjectNode().put("role", "read"));
        Output write = exec(bob, "alice/web", "veggur", "vmi", "write", "--socket", SOCKET, "--physical", "0x100000", "--hex", "deadbeef");
        Output pause = exec(bob, "alice/web", "veggur", "vmi", "pause", "--socket", SOCKET);
        Output breakpoint = exec(bob, "alice/web", "veggur", "vmi", "break", "--socket", SOCKET, "__x64_sys_getpid",
                "--count", "1", "--seconds", "5");
        done("refused by the socket itself, whatever the client sends:");
        indent(write.stderr() + pause.stderr() + breakpoint.stderr());

        step("alice revokes bob's grant: his environment and its live sessions end at once");
        alice.delete("/v1/vms/alice/web/grants/bob");
        refusedByApi(() -> bob.get("/v1/vms/alice/web/environment"));
        done("");

        step("alice swaps her container for a network environment: TLS 1.3, a client certificate bound to web, role"
                + " read and loopback");
        alice.delete("/v1/vms/alice/web/environment");
        JsonNode network = alice.put("/v1/vms/alice/web/environment", Json.MAPPER.createObjectNode()
                .put("flavor", "network").put("role", "read"));
        Path identity = home.resolve("alice-web.p12");
        AgentClient.writeIdentity(identity, network);
        String endpoint = network.path("endpoint").asText();
        int processes;
        try (IntrospectionSession session = IntrospectionSession.connect(endpoint + "?identity=" + identity)) {
            processes = KernelDiscovery.discover(session.physicalMemory(), null).processes().items().size();
        }
        String plaintext;
        try (IntrospectionSession session = IntrospectionSession.connect(endpoint.replace("tls://", "tcp://"))) {
            plaintext = "plaintext was let in (wrong)";
        } catch (IOException e) {
            plaintext = "plaintext to the same port is refused: " + e.getMessage();
        }
        done(processes + " processes listed over " + endpoint + " with the identity in " + identity);
        indent(plaintext + "\n");

        // The agent offers the vm flavor when it was given the monitoring VM image (./veggur demo builds it).
        if (System.getenv("VEGGUR_MONITOR_IMAGE") != null) {
            step("alice swaps it for a monitoring VM: its only channel is a virtio-serial port to web's socket");
            alice.delete("/v1/vms/alice/web/environment");
            alice.put("/v1/vms/alice/web/environment", Json.MAPPER.createObjectNode().put("flavor", "vm").put("role", "read"));
            Output info = exec(alice, "alice/web", "sh", "-c", "veggur vmi info --socket serial:io.veggur.vmi | head -n 3;"
                    + " echo \"network: $(ls /sys/class/net), disks: $(ls /sys/block | wc -l), sockets: $(find / -xdev -type s | wc -l)\"");
            done("exit " + info.exitCode() + " (the tools run inside the monitoring VM, under TCG here)");
            indent(info.stdout() + info.stderr());
        }

        step("the audit log: every refusal is there, and the hash chain verifies");
        Thread.sleep(1500); // the agent collects the socket's refusals once a second
        for (JsonNode record : operator.get("/v1/audit?limit=10000")) {
            if (record.path("decision").asText().equals("denied")) {
                System.out.printf("    %4d %-12s %-18s %-32s %s%n", record.path("seq").asLong(), record.path("actor").asText(),
                        record.path("action").asText(), record.path("target").asText(), record.path("detail").asText());
            }
        }
        try (AgentStore store = AgentStore.open(home.resolve("agent/agent.db"))) {
            AuditVerification verification = store.audit().verify();
            done(verification.intact() ? "audit log intact: " + verification.recordsChecked() + " records"
                    : "audit log BROKEN: " + verification.firstBreak().orElseThrow().message());
        }
    }

    private String createTenant(String name) throws IOException {
        String token = operator.post("/v1/tenants", Json.MAPPER.createObjectNode().put("name", name)).path("token").asText();
        Path file = home.resolve(name + ".token");
        Files.deleteIfExists(file);
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(file, token + "\n", StandardCharsets.UTF_8);
        return token;
    }

    /** The demo's home holds only its own VMs: wait for each running one's init to say it is ready. */
    private void awaitGuestReady() throws IOException, InterruptedException, VmException {
        VmManager manager = new VmManager(new VeggurHome(home));
        for (VmInfo vm : manager.list()) {
            new GuestConsole(manager.directory(vm.name())).awaitLine(Pattern.compile("VEGGUR-READY"), BOOT_TIMEOUT);
        }
    }

    /** What a command run in an environment wrote. */
    private record Output(int exitCode, String stdout, String stderr) {}

    private static Output exec(AgentClient client, String vm, String... argv) throws IOException {
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        AgentClient.ExecEnded ended = client.exec(AgentConnection.vmPath(vm), List.of(argv), 120, stdout, stderr);
        return new Output(ended.exitCode(), stdout.toString(StandardCharsets.UTF_8), stderr.toString(StandardCharsets.UTF_8));
    }

    private interface Request {
        void send() throws IOException;
    }

    private static void refusedByApi(Request request) throws IOException {
        try {
            request.send();
            throw new IllegalStateException("the agent allowed a request it must refuse");
        } catch (AgentException refused) {
            System.out.println("    HTTP " + refused.status() + ": " + refused.getMessage());
        }
    }

    private void cleanUp() throws Exception {
        step("clean up: delete the VMs (their environments go first), stop the agent");
        for (String tenant : List.of("alice", "bob")) {
            Path token = home.resolve(tenant + ".token");
            if (operator == null || !Files.exists(token)) {
                continue;
            }
            AgentClient client = new AgentClient(url, Files.readString(token).trim());
            for (JsonNode vm : client.get("/v1/vms")) {
                if (vm.path("owner").asText().equals(tenant)) {
                    client.delete(AgentClient.vmPath(tenant, vm.path("name").asText()));
                }
            }
        }
        AgentCommand.stop(home.resolve("agent"));
        VmManager manager = new VmManager(new VeggurHome(home));
        for (VmInfo vm : manager.list()) {
            manager.stop(vm.name());
        }
        VeggurHome.deleteTree(home);
        done("nothing left running");
    }

    private void step(String what) {
        stepStart = System.nanoTime();
        System.out.println("\n== " + what);
        System.out.flush();
    }

    private void done(String result) {
        double seconds = (System.nanoTime() - stepStart) / 1e9;
        System.out.printf("   [%6.2f s] %s%n", seconds, result);
        System.out.flush();
    }

    private static void indent(String text) {
        text.lines().forEach(line -> System.out.println("    " + line));
    }
}
