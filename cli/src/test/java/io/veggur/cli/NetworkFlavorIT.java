package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.network.CertificateAuthority;
import io.veggur.agent.network.Cidr;
import io.veggur.agent.network.ClientBinding;
import io.veggur.agent.network.Identity;
import io.veggur.agent.store.VmRef;
import io.veggur.host.server.Role;
import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The network flavor end to end: a real agent listening on every interface, one TCG guest (alice's VM web), and two
 * client machines as network namespaces joined by veth pairs: "cohost" (10.231.1.2, talking to the host's
 * 10.231.1.1) and "remote" (10.231.2.2, talking to 10.231.2.1). Clients are the packaged CLI run inside a namespace.
 * Every refusal must show up in the agent's audit log as a denied {@code net.connect}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NetworkFlavorIT {
    private static final Duration BOOT = Duration.ofSeconds(120);

    private static TestNetns cohost;
    private static TestNetns remote;
    private static TestAgent agent;
    private static String alice;
    private static String bob;
    private static VmInfo web;
    private static Path work;
    private static Path aliceIdentity;
    private static int alicePort;

    @BeforeAll
    static void setUp() throws Exception {
        // The namespaces exist before the agent starts, so its endpoints' certificates name their addresses.
        cohost = TestNetns.create("vgit-co", "10.231.1");
        remote = TestNetns.create("vgit-re", "10.231.2");
        agent = TestAgent.start("--endpoint-address", "0.0.0.0");
        work = Files.createTempDirectory("vgit-net-");
        alice = agent.createTenant("alice");
        bob = agent.createTenant("bob");
        agent.client(alice).post("/v1/vms", Json.MAPPER.createObjectNode().put("name", "web"));
        agent.client(alice).put("/v1/vms/alice/web/grants/bob", Json.MAPPER.createObjectNode().put("role", "read"));
        aliceIdentity = work.resolve("alice.p12");
        Cli.Result created = agent.as(alice, "env", "create", "web", "--flavor", "network", "--role", "read",
                "--client", cohost.clientAddress + "/32", "--identity", aliceIdentity.toString(), "--json");
        assertThat(created.exitCode()).as(created.stderr()).isZero();
        JsonNode environment = Json.MAPPER.readTree(created.stdout());
        assertThat(environment.has("identity")).as("the key is written to the file, not printed").isFalse();
        assertThat(environment.has("password")).isFalse();
        alicePort = port(environment.path("endpoint").asText());
        web = agent.hostVm(vmIdThrough(cohost, tls(cohost, alicePort, aliceIdentity)));
        new GuestConsole(new VeggurHome(agent.home).vm(web.name())).awaitLine(Pattern.compile("VEGGUR-READY"), BOOT);
    }

    @AfterAll
    static void tearDown() throws Exception {
        try {
            if (agent != null) {
                agent.close();
            }
        } finally {
            for (TestNetns netns : new TestNetns[] {cohost, remote}) {
                if (netns != null) {
                    netns.close();
                }
            }
        }
    }

    @Test
    @Order(1)
    void rightCertificate_fromAnAllowedAddress_listsTheGuestsProcesses() throws Exception {
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(aliceIdentity))).isEqualTo("rw-------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(Path.of(aliceIdentity + ".password"))))
                .isEqualTo("rw-------");
        GuestProcesses.assertListingMatches(console(), () -> {
            Cli.Result ps = Cli.runIn(cohost.name, agent.home, Map.of(), "vmi", "ps", "--json", "--socket",
                    tls(cohost, alicePort, aliceIdentity));
            assertThat(ps.exitCode()).as(ps.stderr()).isZero();
            return Json.MAPPER.readTree(ps.stdout());
        });
        assertThat(agent.audit("allowed")).anySatisfy(record -> assertThat(line(record))
                .contains("tenant:alice net.connect vm:alice/web").contains("from " + cohost.clientAddress));
    }

    @Test
    @Order(2)
    void envExec_isRefused_sayingWhereToConnect() throws Exception {
        Cli.Result exec = agent.as(alice, "env", "exec", "web", "--", "true");
        assertThat(exec.exitCode()).isEqualTo(1);
        assertThat(exec.stderr().lines().toList()).hasSize(1).first().asString()
                .contains("(409)").contains("runs nothing on the host").contains("connect your tools to tls://");
    }

    @Test
    @Order(3)
    void rightCertificate_fromAnotherAddress_isRefused() throws Exception {
        Cli.Result refused = Cli.runIn(remote.name, agent.home, Map.of(), "vmi", "info", "--socket",
                tls(remote, alicePort, aliceIdentity));
        assertRefused(refused);
        assertThat(agent.audit("denied")).anySatisfy(record -> assertThat(line(record))
                .contains("tenant:alice net.connect vm:alice/web").contains("from " + remote.clientAddress)
                .contains("is not among the certificate's client addresses"));
    }

    @Test
    @Order(4)
    void certificateFromAnotherCa_isRefused() throws Exception {
        CertificateAuthority impostor = CertificateAuthority.open(work.resolve("impostor-ca"));
        Identity forged = impostor.issueClient(new ClientBinding("alice", new VmRef("alice", "web"), Role.WRITE,
                List.of(Cidr.parse(cohost.clientAddress + "/32"))), Instant.now().minusSeconds(60),
                Instant.now().plusSeconds(3600));
        Path file = work.resolve("forged.p12");
        forged.writePkcs12(file, "forged".toCharArray());
        Files.writeString(Path.of(file + ".password"), "forged\n");
        // The client does not trust the agent's server certificate either: its identity carries the impostor CA.
        assertRefused(Cli.runIn(cohost.name, agent.home, Map.of(), "vmi", "info", "--socket", tls(cohost, alicePort, file)));
        assertThat(agent.audit("denied")).anySatisfy(record -> assertThat(line(record))
                .contains("net.connect vm:alice/web").contains("from " + cohost.clientAddress));
    }

    @Test
    @Order(5)
    void anotherTenantsCertificate_opensOnlyItsOwnEnvironment_withItsOwnRole() throws Exception {
        Path bobIdentity = work.resolve("bob.p12");
        Cli.Result created = agent.as(bob, "env", "create", "alice/web", "--flavor", "network",
                "--client", cohost.clientAddress + "/32", "--identity", bobIdentity.toString(), "--json");
        assertThat(created.exitCode()).as(created.stderr()).isZero();
        int bobPort = port(Json.MAPPER.readTree(created.stdout()).path("endpoint").asText());
        assertThat(bobPort).isNotEqualTo(alicePort);

        assertRefused(Cli.runIn(cohost.name, agent.home, Map.of(), "vmi", "info", "--socket", tls(cohost, alicePort, bobIdentity)));
        assertThat(agent.audit("denied")).anySatisfy(record -> assertThat(line(record))
                .contains("tenant:bob net.connect vm:alice/web").contains("is not the one issued for this environment"));

        assertThat(vmIdThrough(cohost, tls(cohost, bobPort, bobIdentity))).isEqualTo(web.id());
        Cli.Result write = Cli.runIn(cohost.name, agent.home, Map.of(), "vmi", "write", "--socket",
                tls(cohost, bobPort, bobIdentity), "--physical", "0x100000", "--hex", "deadbeef");
        assertThat(write.exitCode()).isNotZero();
        assertThat(write.stderr()).contains("PERMISSION_DENIED");
    }

    @Test
    @Order(6)
    void plaintext_whenTlsIsRequired_isRefused() throws Exception {
        Cli.Result plaintext = Cli.runIn(cohost.name, agent.home, Map.of(), "vmi", "info", "--socket",
                "tcp://" + cohost.hostAddress + ":" + alicePort);
        assertRefused(plaintext);
        assertThat(plaintext.stderr()).contains("the server speaks TLS");
        assertThat(agent.audit("denied")).anySatisfy(record -> assertThat(line(record))
                .contains("network:" + cohost.clientAddress + " net.connect vm:alice/web").contains("TLS handshake failed"));
    }

    @Test
    @Order(7)
    void relay_givesAnUnmodifiedUnixSocketTool_theRemoteVm() throws Exception {
        Path socket = work.resolve("relay").resolve("vmi.sock");
        Process relay = Cli.startIn(cohost.name, agent.home, Map.of(), "relay", tls(cohost, alicePort, aliceIdentity),
                "--listen", socket.toString());
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!Files.exists(socket) && relay.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertThat(socket).as("relay socket").exists();
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(socket))).isEqualTo("rw-------");
            // The tool speaks to a plain UNIX socket (no network namespace): it cannot tell the VM is remote.
            GuestProcesses.assertListingMatches(console(), () -> {
                Cli.Result ps = Cli.run(agent.home, "vmi", "ps", "--json", "--socket", socket.toString());
                assertThat(ps.exitCode()).as(ps.stderr()).isZero();
                return Json.MAPPER.readTree(ps.stdout());
            });
        } finally {
            relay.destroy();
            relay.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    @Order(8)
    void plaintextEnvironment_admitsOnlyItsAllowList() throws Exception {
        assertThat(agent.as(bob, "env", "delete", "alice/web").exitCode()).isZero();
        Cli.Result created = agent.as(bob, "env", "create", "alice/web", "--flavor", "network", "--plaintext",
                "--client", remote.clientAddress + "/32", "--json");
        assertThat(created.exitCode()).as(created.stderr()).isZero();
        assertThat(created.stderr()).contains("plaintext");
        JsonNode environment = Json.MAPPER.readTree(created.stdout());
        assertThat(environment.path("endpoint").asText()).startsWith("tcp://");
        int port = port(environment.path("endpoint").asText());

        String fromRemote = "tcp://" + remote.hostAddress + ":" + port;
        assertThat(vmIdThrough(remote, fromRemote)).isEqualTo(web.id());
        assertRefused(Cli.runIn(cohost.name, agent.home, Map.of(), "vmi", "info", "--socket",
                "tcp://" + cohost.hostAddress + ":" + port));
        assertThat(agent.audit("denied")).anySatisfy(record -> assertThat(line(record))
                .contains("network:" + cohost.clientAddress + " net.connect vm:alice/web").contains("not in the allow-list"));
        assertThat(agent.audit("allowed")).anySatisfy(record -> assertThat(line(record))
                .contains("network:" + remote.clientAddress + " net.connect vm:alice/web").contains("is in the allow-list"));
    }

    @Test
    @Order(9)
    void revokingTheGrant_andDeletingTheEnvironment_closeTheirEndpoints() throws Exception {
        String bobEndpoint = agent.client(bob).get("/v1/vms/alice/web/environment").path("endpoint").asText();
        Process session = Cli.startIn(remote.name, agent.home, Map.of(), "vmi", "events", "--socket",
                "tcp://" + remote.hostAddress + ":" + port(bobEndpoint));
        Thread.sleep(3000);
        assertThat(session.isAlive()).as("bob's event session runs").isTrue();
        assertThat(agent.as(alice, "revoke", "web", "bob").exitCode()).isZero();
        assertThat(session.waitFor(10, TimeUnit.SECONDS)).as("bob's live session ends with the revocation").isTrue();
        assertRefused(Cli.runIn(remote.name, agent.home, Map.of(), "vmi", "info", "--socket",
                "tcp://" + remote.hostAddress + ":" + port(bobEndpoint)));

        assertThat(agent.as(alice, "env", "delete", "web").exitCode()).isZero();
        assertRefused(Cli.runIn(cohost.name, agent.home, Map.of(), "vmi", "info", "--socket",
                tls(cohost, alicePort, aliceIdentity)));
    }

    @Test
    @Order(10)
    void traceRole_breakpointsWorkOverTls() throws Exception {
        Path identity = work.resolve("alice-trace.p12");
        Cli.Result created = agent.as(alice, "env", "create", "web", "--flavor", "network", "--role", "trace",
                "--client", cohost.clientAddress + "/32", "--identity", identity.toString(), "--json");
        assertThat(created.exitCode()).as(created.stderr()).isZero();
        int port = port(Json.MAPPER.readTree(created.stdout()).path("endpoint").asText());
        console().type("veggur-getpid 9 20000");
        int pid = Integer.parseInt(console().awaitLine(Pattern.compile("VEGGUR-GETPID-START pid=(\\d+) calls=9\\b"), BOOT)
                .group(1));
        Cli.Result traced = Cli.runIn(cohost.name, agent.home, Map.of(), "vmi", "break", "__x64_sys_getpid", "--socket",
                tls(cohost, port, identity), "--pid", Integer.toString(pid), "--count", "9", "--seconds", "60");
        assertThat(traced.exitCode()).as(traced.stderr()).isZero();
        assertThat(traced.stdout()).contains("9 hits").contains("pid " + pid + " (veggur-getpid)");
        assertThat(console().awaitLine(Pattern.compile("VEGGUR-GETPID pid=(\\d+) calls=9 "), BOOT).group(1))
                .isEqualTo(Integer.toString(pid));
    }

    private static GuestConsole console() {
        return new GuestConsole(new VeggurHome(agent.home).vm(web.name()));
    }

    private static String tls(TestNetns netns, int port, Path identity) {
        return "tls://" + netns.hostAddress + ":" + port + "?identity=" + identity;
    }

    private static int port(String endpoint) {
        return Integer.parseInt(endpoint.substring(endpoint.lastIndexOf(':') + 1));
    }

    private static String vmIdThrough(TestNetns netns, String endpoint) throws Exception {
        Cli.Result info = Cli.runIn(netns.name, agent.home, Map.of(), "vmi", "info", "--socket", endpoint);
        assertThat(info.exitCode()).as(info.stderr()).isZero();
        return info.stdout().lines().filter(line -> line.startsWith("vm id")).findFirst().orElseThrow().split("\\s+")[2];
    }

    /** A refused client fails with one clear line, and the refusal says nothing about why (that is in the audit log). */
    private static void assertRefused(Cli.Result result) {
        assertThat(result.exitCode()).as(result.stdout()).isNotZero();
        assertThat(result.stderr().lines().toList()).hasSize(1).first().asString().startsWith("veggur: error:");
        assertThat(result.stderr()).doesNotContain(agent.home.toString());
    }


    private static String line(JsonNode record) {
        return record.path("actor").asText() + " " + record.path("action").asText() + " " + record.path("target").asText()
                + " " + record.path("detail").asText();
    }
}
