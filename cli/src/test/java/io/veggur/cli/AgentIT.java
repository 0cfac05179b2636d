package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.client.AgentClient;
import io.veggur.agent.client.AgentException;
import io.veggur.agent.environment.ContainerEnvironments;
import io.veggur.agent.store.AgentStore;
import io.veggur.agent.store.Flavor;
import io.veggur.agent.store.Tenant;
import io.veggur.agent.store.VmRef;
import io.veggur.host.server.Role;
import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import java.io.BufferedReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Self-service introspection end to end, with a real agent process, the private dockerd and TCG guests: tenants alice
 * (VM web) and bob (VM lab), each with a container environment. Isolation first, then grants and revocation, then
 * the life cycle (agent kill -9 and restart, VM stop), in that order on the same agent.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AgentIT {
    private static final Duration BOOT = Duration.ofSeconds(120);
    private static final String PS = "veggur vmi ps --socket /vmi/vmi.sock --json";

    private static TestAgent agent;
    private static String alice;
    private static String bob;
    private static VmInfo web;
    private static VmInfo lab;

    @BeforeAll
    static void setUp() throws Exception {
        agent = TestAgent.start();
        alice = agent.createTenant("alice");
        bob = agent.createTenant("bob");
        agent.client(alice).post("/v1/vms", Json.MAPPER.createObjectNode().put("name", "web"));
        agent.client(bob).post("/v1/vms", Json.MAPPER.createObjectNode().put("name", "lab"));
        agent.client(alice).put("/v1/vms/alice/web/environment", Json.MAPPER.createObjectNode().put("flavor", "container"));
        agent.client(bob).put("/v1/vms/bob/lab/environment", Json.MAPPER.createObjectNode().put("flavor", "container"));
        web = agent.hostVm(vmIdSeenBy(alice, "web"));
        lab = agent.hostVm(vmIdSeenBy(bob, "lab"));
        for (VmInfo vm : List.of(web, lab)) {
            console(vm).awaitLine(Pattern.compile("VEGGUR-READY"), BOOT);
        }
    }

    @AfterAll
    static void tearDown() throws Exception {
        if (agent != null) {
            agent.close();
        }
    }

    @Test
    @Order(1)
    void aliceContainer_listsHerGuestsProcesses_asTheGuestsProcShowsThem() throws Exception {
        GuestProcesses.assertListingMatches(console(web), () -> {
            Cli.Result ps = agent.as(alice, "env", "exec", "web", "--", "sh", "-c", PS);
            assertThat(ps.exitCode()).as(ps.stderr()).isZero();
            return Json.MAPPER.readTree(ps.stdout());
        });
    }

    @Test
    @Order(2)
    void bobsContainer_holdsOnlyHisOwnSocket_andCannotReachAlices() throws Exception {
        assertThat(vmIdSeenBy(bob, "lab")).isEqualTo(lab.id()).isNotEqualTo(web.id());
        Cli.Result look = agent.as(bob, "env", "exec", "lab", "--", "sh", "-c",
                "find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print; ls -a /vmi; for p in " + web.socket() + " " + Path.of(web.socket()).getParent()
                        + " " + agent.home + " /dev/shm; do test -e $p && echo present $p; done; true");
        assertThat(look.exitCode()).as(look.stderr()).isZero();
        assertThat(look.stdout().lines().toList()).containsExactly("/vmi/vmi.sock", ".", "..", "vmi.sock");

        Path aliceDirectory = environmentDirectory(web);
        Path bobDirectory = environmentDirectory(lab);
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(aliceDirectory))).isEqualTo("rwx------");
        assertThat(Files.getAttribute(aliceDirectory, "unix:uid")).isNotEqualTo(Files.getAttribute(bobDirectory, "unix:uid"));
        assertThat((int) Files.getAttribute(bobDirectory, "unix:uid")).isPositive();

        // Even a connect() to alice's socket path from bob's container fails: the path does not exist there.
        Cli.Result reach = agent.as(bob, "env", "exec", "lab", "--", "veggur", "vmi", "info", "--socket",
                aliceDirectory.resolve("vmi.sock").toString());
        assertThat(reach.exitCode()).isNotZero();
        assertThat(reach.stdout()).doesNotContain(web.id());
    }

    @Test
    @Order(3)
    void api_answersTheSameForAnotherTenantsVmAsForNone_andRefusesTraversal() throws Exception {
        AgentClient asBob = agent.client(bob);
        String missing = refusal(() -> asBob.get("/v1/vms/alice/nothing"), 404);
        assertThat(refusal(() -> asBob.get("/v1/vms/alice/web"), 404)).isEqualTo(missing.replace("nothing", "web"));
        refusal(() -> asBob.put("/v1/vms/alice/web/environment", Json.MAPPER.createObjectNode()), 404);
        refusal(() -> asBob.post("/v1/vms/alice/web/stop", null), 404);
        refusal(() -> asBob.put("/v1/vms/alice/web/grants/bob", Json.MAPPER.createObjectNode().put("role", "write")), 404);
        refusal(() -> asBob.get("/v1/vms/alice/web/grants"), 404);
        refusal(() -> asBob.get("/v1/vms/alice/" + web.name()), 404);       // the host's name for it
        refusal(() -> asBob.get("/v1/vms/carol/web"), 404);
        assertThat(asBob.get("/v1/vms").findValuesAsText("vm")).containsExactly("bob/lab");

        List<String> bodies = new ArrayList<>();
        for (String path : List.of("/v1/vms/alice/..%2F..%2Fetc%2Fpasswd", "/v1/vms/..%2Falice/web",
                "/v1/vms/alice/web%2F..%2F..%2Flab", "/v1/vms/%2e%2e/%2e%2e", "/v1/vms/alice/web/../../bob/lab/environment/exec",
                "/v1/vms/" + "a".repeat(300) + "/web", "/v1/../v1/vms/alice/web")) {
            HttpResponse<String> answer = raw("GET", path, bob);
            assertThat(answer.statusCode()).as(path).isIn(400, 404);
            bodies.add(answer.body());
        }
        assertThat(raw("GET", "/v1/vms", null).statusCode()).isEqualTo(401);
        assertThat(raw("GET", "/v1/vms", "not-a-token").statusCode()).isEqualTo(401);
        assertThat(raw("GET", "/v1/tenants", bob).statusCode()).isEqualTo(403);
        assertThat(raw("GET", "/v1/audit", alice).statusCode()).isEqualTo(403);
        for (String body : bodies) {
            assertThat(body).doesNotContain(agent.home.toString()).doesNotContain("vm-").doesNotContain("Exception");
        }

        List<JsonNode> denied = denied();
        assertThat(denied).anySatisfy(r -> assertThat(r.path("actor").asText() + " " + r.path("target").asText())
                .isEqualTo("tenant:bob GET /v1/vms/alice/web"));
        assertThat(denied).anySatisfy(r -> assertThat(r.path("actor").asText() + " " + r.path("action").asText())
                .isEqualTo("anonymous api.vm.list"));
        assertThat(denied).anySatisfy(r -> assertThat(r.path("target").asText()).contains("..%2F..%2Fetc%2Fpasswd"));
        assertThat(denied).anySatisfy(r -> assertThat(r.path("actor").asText() + " " + r.path("action").asText())
                .isEqualTo("tenant:alice api.audit.read"));
    }

    @Test
    @Order(4)
    void cli_badInput_endsInOneClearLine() throws Exception {
        assertOneLineError(agent.as(alice, "grant", "web", "bob", "admin"), "unknown role 'admin'");
        assertOneLineError(agent.as(alice, "env", "create", "web", "--flavor", "bogus"), "unknown flavor 'bogus'");
        assertOneLineError(agent.as(alice, "vm", "create", "Bad_Name"), "invalid VM name");
        assertOneLineError(agent.as(alice, "vm", "create", "big", "--memory", "64G"), "memory must be");
        assertOneLineError(agent.as(alice, "env", "exec", "nothing", "--", "true"), "(404): no VM 'alice/nothing'");
        assertOneLineError(agent.as("not-a-token", "vm", "list"), "(401): missing or invalid bearer token");
        assertOneLineError(Cli.run(agent.home, java.util.Map.of("VEGGUR_AGENT", "http://127.0.0.1:9", "VEGGUR_TOKEN", alice),
                "vm", "list"), "does not answer");
        Cli.Result failing = agent.as(alice, "env", "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 7");
        assertThat(failing.exitCode()).isEqualTo(7);
        assertThat(failing.stdout()).isEqualTo("out\n");
        assertThat(failing.stderr()).isEqualTo("err\n");
    }

    @Test
    @Order(5)
    void envExec_streamsOutputWhileTheCommandRuns_andKillsItWhenTheCallerLeaves() throws Exception {
        Path go = environmentDirectory(web).resolve("go");
        // The command goes on only once the test has read its first line through the CLI: output held back until
        // the command ended would leave it waiting until its timeout.
        Process live = agent.startAs(alice, "env", "exec", "web", "--timeout", "60", "--", "sh", "-c",
                "echo first; while [ ! -e /vmi/go ]; do sleep 0.1; done; echo second");
        try {
            BufferedReader stdout = live.inputReader(StandardCharsets.UTF_8);
            assertThat(stdout.readLine()).isEqualTo("first");
            Files.writeString(go, "");
            assertThat(stdout.readLine()).isEqualTo("second");
            assertThat(live.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(live.exitValue()).isZero();
        } finally {
            live.destroyForcibly();
            Files.deleteIfExists(go);
        }

        // A command that says nothing more after its first line: the agent's keep-alives find the reader gone.
        Process leaving = agent.startAs(alice, "env", "exec", "web", "--timeout", "600", "--", "sh", "-c",
                "echo veggur-leaving; sleep 600");
        assertThat(leaving.inputReader(StandardCharsets.UTF_8).readLine()).isEqualTo("veggur-leaving");
        leaving.destroyForcibly().waitFor();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        String commands;
        do {
            Thread.sleep(300);
            Cli.Result listed = agent.as(alice, "env", "exec", "web", "--", "sh", "-c", "cat /proc/[0-9]*/cmdline");
            assertThat(listed.exitCode()).as(listed.stderr()).isZero();
            commands = listed.stdout().replace('\0', ' ');
        } while (commands.contains("echo veggur-leaving") && System.nanoTime() < deadline);
        assertThat(commands).doesNotContain("echo veggur-leaving");
    }

    private static void assertOneLineError(Cli.Result result, String message) {
        assertThat(result.exitCode()).as(result.stderr()).isEqualTo(1);
        assertThat(result.stderr().lines().toList()).hasSize(1).first().asString().startsWith("veggur: error:").contains(message);
    }

    @Test
    @Order(6)
    void readGrant_socketRefusesWritesPausesAndBreakpoints_evenThoughTheClientAsks() throws Exception {
        agent.client(alice).put("/v1/vms/alice/web/grants/bob", Json.MAPPER.createObjectNode().put("role", "read"));
        refusal(() -> agent.client(bob).put("/v1/vms/alice/web/environment",
                Json.MAPPER.createObjectNode().put("role", "write")), 403);
        agent.client(bob).put("/v1/vms/alice/web/environment", Json.MAPPER.createObjectNode().put("role", "read"));
        assertThat(vmIdSeenBy(bob, "alice/web")).isEqualTo(web.id());

        Cli.Result write = agent.as(bob, "env", "exec", "alice/web", "--", "veggur", "vmi", "write",
                "--socket", "/vmi/vmi.sock", "--physical", "0x100000", "--hex", "deadbeef");
        assertThat(write.exitCode()).isEqualTo(1);
        assertThat(write.stderr()).contains("PERMISSION_DENIED").contains("write role");
        Cli.Result pause = agent.as(bob, "env", "exec", "alice/web", "--", "veggur", "vmi", "pause", "--socket", "/vmi/vmi.sock");
        assertThat(pause.exitCode()).isEqualTo(1);
        assertThat(pause.stderr()).contains("PERMISSION_DENIED").contains("trace role");
        Cli.Result breakpoint = agent.as(bob, "env", "exec", "alice/web", "--", "veggur", "vmi", "break", "--socket",
                "/vmi/vmi.sock", "__x64_sys_getpid", "--count", "1", "--seconds", "5");
        assertThat(breakpoint.exitCode()).isEqualTo(1);
        assertThat(breakpoint.stderr()).contains("PERMISSION_DENIED").contains("breakpoints need the trace role");

        // The refusals came from the socket (the supervisor), and reach the audit log within a reconcile period.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        List<String> refusals;
        do {
            Thread.sleep(200);
            refusals = denied().stream().filter(r -> r.path("action").asText().equals("socket.refused"))
                    .map(r -> r.path("actor").asText() + " " + r.path("target").asText() + " " + r.path("detail").asText())
                    .toList();
        } while (refusals.size() < 3 && System.nanoTime() < deadline);
        assertThat(refusals).containsExactly("tenant:bob vm:alice/web memory writes need the write role",
                "tenant:bob vm:alice/web pausing needs the trace role",
                "tenant:bob vm:alice/web breakpoints need the trace role");
    }

    @Test
    @Order(7)
    void traceGrant_breakpointsWorkFromTheContainer() throws Exception {
        agent.client(alice).put("/v1/vms/alice/web/grants/bob", Json.MAPPER.createObjectNode().put("role", "trace"));
        agent.client(bob).delete("/v1/vms/alice/web/environment");
        agent.client(bob).put("/v1/vms/alice/web/environment", Json.MAPPER.createObjectNode().put("role", "trace"));

        console(web).type("veggur-getpid 7 15000");
        int pid = Integer.parseInt(console(web).awaitLine(Pattern.compile("VEGGUR-GETPID-START pid=(\\d+) calls=7\\b"), BOOT)
                .group(1));
        Cli.Result traced = agent.as(bob, "env", "exec", "alice/web", "--timeout", "60", "--", "veggur", "vmi", "break",
                "__x64_sys_getpid", "--socket", "/vmi/vmi.sock", "--pid", Integer.toString(pid), "--count", "7",
                "--seconds", "45");
        assertThat(traced.exitCode()).as(traced.stderr()).isZero();
        assertThat(traced.stdout()).contains("7 hits").contains("pid " + pid + " (veggur-getpid)");
        assertThat(console(web).awaitLine(Pattern.compile("VEGGUR-GETPID pid=(\\d+) calls=7 "), BOOT).group(1))
                .isEqualTo(Integer.toString(pid));
    }

    @Test
    @Order(8)
    void revokingTheGrant_endsBobsLiveSessionAndRemovesHisContainer() throws Exception {
        Path socket = environmentDirectory(web, "bob").resolve("vmi.sock");
        String container = containerOf(socket.getParent());
        CompletableFuture<Cli.Result> watching = CompletableFuture.supplyAsync(() -> {
            try {
                return agent.as(bob, "env", "exec", "alice/web", "--timeout", "60", "--", "veggur", "vmi", "events",
                        "--socket", "/vmi/vmi.sock");
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        awaitConnected(socket, container);

        long revoked = System.nanoTime();
        agent.client(alice).delete("/v1/vms/alice/web/grants/bob");
        Cli.Result ended = watching.get(30, TimeUnit.SECONDS);
        assertThat(Duration.ofNanos(System.nanoTime() - revoked)).isLessThan(Duration.ofSeconds(20));
        // The session was seen connected in the container and would have run for 60 s: ending within 20 s, it was
        // the revocation that ended it. What the tool printed is not asserted: removing the container may cut the
        // output of the exec the tool ran in.
        assertThat(ended.exitCode()).isNotZero();
        assertThat(TestDocker.docker("ps", "-aq", "--filter", "name=^" + container + "$")).isBlank();
        assertThat(socket.getParent()).doesNotExist();
        refusal(() -> agent.client(bob).get("/v1/vms/alice/web/environment"), 404);
    }

    @Test
    @Order(9)
    void agentKill9ThenRestart_readoptsVmsAndEnvironments_andLosesNoAuditRecord() throws Exception {
        Path before = agent.home.resolve("audit-before.jsonl");
        agent.kill9();
        assertThat(agent.cli("audit", "export", "--out", before.toString()).exitCode()).isZero();
        assertThat(agent.cli("host", "vm", "list").stdout()).containsPattern(web.name() + "\\s+running")
                .containsPattern(lab.name() + "\\s+running");

        // Work the dead agent left unfinished: an environment still being built, and a container it never recorded.
        try (AgentStore store = AgentStore.open(agent.home.resolve("agent/agent.db"))) {
            Tenant bobTenant = store.tenant("bob").orElseThrow();
            store.grant(bobTenant, "lab", "alice", Role.READ);
            store.createEnvironment(store.tenant("alice").orElseThrow(), new VmRef("bob", "lab"), Flavor.CONTAINER, Role.READ);
        }
        String agentId = ContainerEnvironments.agentId(new VeggurHome(agent.home));
        String stray = "veggur-" + agentId + "-env-999999";
        String foreign = "veggur-000000000000-env-999999"; // another agent's, on the same dockerd: not ours to remove
        for (String[] container : new String[][] {{stray, agentId}, {foreign, "000000000000"}}) {
            TestDocker.docker("run", "-d", "--name", container[0], "--label", "io.veggur.env=999999", "--label",
                    "io.veggur.agent=" + container[1], "--network", "none", "--user", "65534:65534", agent.docker.image());
        }

        agent.startAgain();
        refusal(() -> agent.client(alice).get("/v1/vms/bob/lab/environment"), 404);
        assertThat(TestDocker.docker("ps", "-aq", "--filter", "name=^" + stray + "$")).isBlank();
        assertThat(TestDocker.docker("ps", "-aq", "--filter", "name=^" + foreign + "$")).isNotBlank();
        TestDocker.docker("rm", "-f", foreign);
        assertThat(agent.operator().get("/v1/audit?limit=10000").findValuesAsText("detail"))
                .anySatisfy(detail -> assertThat(detail).contains("creating -> deleting: the agent stopped while building it"));
        JsonNode environment = agent.client(alice).get("/v1/vms/alice/web/environment");
        assertThat(environment.path("state").asText()).isEqualTo("ready");
        assertThat(vmIdSeenBy(alice, "web")).isEqualTo(web.id());
        assertThat(vmIdSeenBy(bob, "lab")).isEqualTo(lab.id());

        Path after = agent.home.resolve("audit-after.jsonl");
        assertThat(agent.cli("audit", "export", "--out", after.toString()).exitCode()).isZero();
        List<String> beforeLines = Files.readAllLines(before);
        assertThat(beforeLines).hasSizeGreaterThan(30);
        assertThat(Files.readAllLines(after).subList(0, beforeLines.size())).isEqualTo(beforeLines);
        assertThat(agent.cli("audit", "verify").stdout()).startsWith("audit log intact");
    }

    @Test
    @Order(10)
    void auditVerify_findsATamperedRecord() throws Exception {
        Path copy = agent.home.resolve("tampered.db");
        try (Connection db = DriverManager.getConnection("jdbc:sqlite:" + agent.home.resolve("agent/agent.db"));
             Statement statement = db.createStatement()) {
            statement.execute("VACUUM INTO '" + copy + "'");
        }
        long seq;
        try (Connection db = DriverManager.getConnection("jdbc:sqlite:" + copy); Statement statement = db.createStatement()) {
            statement.execute("DROP TRIGGER audit_no_update");
            var rs = statement.executeQuery("SELECT min(seq) FROM audit WHERE action = 'socket.refused'");
            seq = rs.getLong(1);
            statement.execute("UPDATE audit SET detail = 'nothing happened' WHERE seq = " + seq);
        }
        Cli.Result verify = agent.cli("audit", "verify", "--db", copy.toString());
        assertThat(verify.exitCode()).isEqualTo(1);
        assertThat(verify.stdout()).contains("BROKEN at record " + seq).contains("HASH_MISMATCH");
        assertThat(agent.cli("audit", "verify").exitCode()).isZero();
    }

    @Test
    @Order(11)
    void stoppingAVm_removesItsEnvironmentsContainers() throws Exception {
        Path directory = environmentDirectory(web);
        String container = containerOf(directory);
        assertThat(TestDocker.docker("ps", "-q", "--filter", "name=^" + container + "$")).isNotBlank();

        JsonNode stopped = agent.client(alice).post("/v1/vms/alice/web/stop", null);

        assertThat(stopped.path("state").asText()).isEqualTo("stopped");
        assertThat(TestDocker.docker("ps", "-aq", "--filter", "name=^" + container + "$")).isBlank();
        assertThat(directory).doesNotExist();
        refusal(() -> agent.client(alice).get("/v1/vms/alice/web/environment"), 404);
        assertThat(agent.cli("audit", "verify").exitCode()).isZero();
    }

    @Test
    @Order(12)
    void aVmThatDiesOnItsOwn_losesItsEnvironmentToo() throws Exception {
        Path directory = environmentDirectory(lab);
        String container = containerOf(directory);
        ProcessHandle.of(lab.qemuPid()).orElseThrow().destroyForcibly();

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (Files.exists(directory) && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertThat(directory).doesNotExist();
        assertThat(TestDocker.docker("ps", "-aq", "--filter", "name=^" + container + "$")).isBlank();
        assertThat(agent.client(bob).get("/v1/vms/bob/lab").path("state").asText()).isIn("stopped", "failed");
    }

    // ---- helpers

    private static GuestConsole console(VmInfo vm) {
        return new GuestConsole(new VeggurHome(agent.home).vm(vm.name()));
    }

    /** The VM id that {@code vmi info} reports inside the tenant's environment for {@code vm}. */
    private static String vmIdSeenBy(String token, String vm) throws Exception {
        Cli.Result info = agent.as(token, "env", "exec", vm, "--", "veggur", "vmi", "info", "--socket", "/vmi/vmi.sock");
        assertThat(info.exitCode()).as(info.stderr()).isZero();
        return info.stdout().lines().filter(line -> line.startsWith("vm id")).findFirst().orElseThrow().split("\\s+")[2];
    }

    /** The socket directory of the environment of the VM's owner (host VM names are vm-ID, ID the store's). */
    private static Path environmentDirectory(VmInfo vm) throws Exception {
        return environmentDirectory(vm, vm == web ? "alice" : "bob");
    }

    /** The socket directory of {@code tenant}'s environment on a host VM, found through its container's labels. */
    private static Path environmentDirectory(VmInfo vm, String tenant) throws Exception {
        List<String> ids = TestDocker.docker("ps", "--filter", "label=io.veggur.vm=" + vm.name().substring(3),
                "--filter", "label=io.veggur.tenant=" + tenant, "--format", "{{.Label \"io.veggur.env\"}}").lines().toList();
        assertThat(ids).as("%s's environments on %s", tenant, vm.name()).hasSize(1);
        return agent.home.resolve("environments/env-" + ids.getFirst().trim());
    }

    private static String containerOf(Path directory) {
        return "veggur-" + ContainerEnvironments.agentId(new VeggurHome(agent.home)) + "-" + directory.getFileName();
    }

    /**
     * Waits until a client in the container is connected to the socket. The server's end of an accepted connection
     * lives in the client's network namespace, so the container's /proc/net/unix lists the path in state 03.
     */
    private static void awaitConnected(Path socket, String container) throws Exception {
        String pid = TestDocker.docker("inspect", "--format", "{{.State.Pid}}", container).trim();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            long connected = Files.readAllLines(Path.of("/proc", pid, "net", "unix")).stream()
                    .map(line -> line.trim().split("\\s+"))
                    .filter(fields -> fields.length >= 8 && fields[7].equals(socket.toString()) && fields[5].equals("03"))
                    .count();
            if (connected > 0) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("no client connected to " + socket + " within 30 s");
    }

    private interface Call {
        Object run() throws Exception;
    }

    /** The call is refused with this status; returns the message the caller was given. */
    private static String refusal(Call call, int status) {
        AgentException[] caught = new AgentException[1];
        assertThatThrownBy(() -> {
            try {
                call.run();
            } catch (AgentException e) {
                caught[0] = e;
                throw e;
            }
        }).isInstanceOf(AgentException.class);
        assertThat(caught[0].status()).as(caught[0].getMessage()).isEqualTo(status);
        assertThat(caught[0].getMessage()).doesNotContain(agent.home.toString());
        return caught[0].getMessage();
    }

    private static HttpResponse<String> raw(String method, String path, String token) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(agent.url() + path))
                .method(method, HttpRequest.BodyPublishers.noBody());
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        return HttpClient.newHttpClient().send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static List<JsonNode> denied() throws Exception {
        return agent.audit("denied");
    }
}
