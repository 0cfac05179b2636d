package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The monitoring-VM flavor end to end: a real agent, alice's TCG guest web and her monitoring VM (a second TCG guest
 * booted from monitor/build-image.sh), whose only channel to any introspection socket is a virtio-serial port the
 * agent bridges to web's role-bound socket. The tools run inside the monitoring VM through {@code veggur env exec};
 * the ground truth is web's own /proc.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class VmFlavorIT {
    private static final Duration BOOT = Duration.ofSeconds(120);
    private static final String PS = "veggur vmi ps --json --socket serial:io.veggur.vmi";

    private static TestAgent agent;
    private static String alice;
    private static VmInfo web;

    @BeforeAll
    static void setUp() throws Exception {
        agent = TestAgent.start();
        alice = agent.createTenant("alice");
        agent.client(alice).post("/v1/vms", Json.MAPPER.createObjectNode().put("name", "web"));
        JsonNode environment = agent.client(alice).put("/v1/vms/alice/web/environment",
                Json.MAPPER.createObjectNode().put("flavor", "vm").put("role", "trace"));
        assertThat(environment.path("state").asText()).isEqualTo("ready");
        assertThat(environment.path("endpoint").asText()).isEqualTo("serial:io.veggur.vmi");
        web = agent.hostVm(vmIdSeenFromTheMonitor());
        new GuestConsole(new VeggurHome(agent.home).vm(web.name())).awaitLine(Pattern.compile("VEGGUR-READY"), BOOT);
    }

    @AfterAll
    static void tearDown() throws Exception {
        if (agent != null) {
            agent.close();
        }
    }

    @Test
    @Order(1)
    void monitoringVm_listsTheGuestsProcesses_throughVirtioSerial() throws Exception {
        GuestProcesses.assertListingMatches(new GuestConsole(new VeggurHome(agent.home).vm(web.name())), () -> {
            Cli.Result ps = agent.as(alice, "env", "exec", "--timeout", "300", "web", "--", "sh", "-c", PS);
            assertThat(ps.exitCode()).as(ps.stderr()).isZero();
            return Json.MAPPER.readTree(ps.stdout());
        });
    }

    @Test
    @Order(2)
    void monitoringVm_hasNoPathToAnyOtherSocket() throws Exception {
        Cli.Result look = agent.as(alice, "env", "exec", "web", "--", "sh", "-c",
                "echo sockets: $(find / -xdev -type s 2>/dev/null); echo ports: $(ls /dev/virtio-ports);"
                        + " echo net: $(ls /sys/class/net); echo block: $(ls /sys/block);"
                        + " echo virtio: $(cat /sys/bus/virtio/devices/*/device | sort -u);"
                        + " echo fs: $(awk '{print $3}' /proc/mounts | sort -u)");
        assertThat(look.exitCode()).as(look.stderr()).isZero();
        List<String> lines = look.stdout().lines().toList();
        // The only virtio device is the console (id 3): no vsock, no network, no disk, no shared file system.
        assertThat(lines).contains("sockets:", "ports: io.veggur.exec io.veggur.vmi", "net: lo", "block:",
                "virtio: 0x0003");
        assertThat(lines.stream().filter(line -> line.startsWith("fs:")).findFirst().orElseThrow())
                .doesNotContain("9p", "virtiofs", "nfs");
        // The one port leads to web's socket and to nothing else.
        assertThat(vmIdSeenFromTheMonitor()).isEqualTo(web.id());
    }

    @Test
    @Order(3)
    void traceRole_isEnforcedByTheSocketBehindThePort() throws Exception {
        Cli.Result write = agent.as(alice, "env", "exec", "web", "--", "veggur", "vmi", "write", "--socket",
                "serial:io.veggur.vmi", "--physical", "0x100000", "--hex", "deadbeef");
        assertThat(write.exitCode()).isNotZero();
        assertThat(write.stderr()).contains("PERMISSION_DENIED");
        awaitAudit("denied", "tenant:alice socket.refused vm:alice/web");
        awaitAudit("allowed", "tenant:alice serial.connect vm:alice/web");
    }

    @Test
    @Order(4)
    void breakpoints_workFromTheMonitoringVm() throws Exception {
        GuestConsole console = new GuestConsole(new VeggurHome(agent.home).vm(web.name()));
        // A long pause before the calls: the tool starts in a TCG guest and discovers the kernel over the serial link.
        console.type("veggur-getpid 9 90000");
        int pid = Integer.parseInt(console.awaitLine(Pattern.compile("VEGGUR-GETPID-START pid=(\\d+) calls=9\\b"), BOOT)
                .group(1));
        Cli.Result traced = agent.as(alice, "env", "exec", "--timeout", "240", "web", "--", "veggur", "vmi", "break",
                "__x64_sys_getpid", "--socket", "serial:io.veggur.vmi", "--pid", Integer.toString(pid), "--count", "9",
                "--seconds", "200");
        assertThat(traced.exitCode()).as(traced.stderr()).isZero();
        assertThat(traced.stdout()).contains("9 hits").contains("pid " + pid + " (veggur-getpid)");
        assertThat(console.awaitLine(Pattern.compile("VEGGUR-GETPID pid=(\\d+) calls=9 "), BOOT).group(1))
                .isEqualTo(Integer.toString(pid));
    }

    @Test
    @Order(5)
    void stoppingTheVm_removesItsMonitoringVm() throws Exception {
        VmManager manager = new VmManager(new VeggurHome(agent.home));
        assertThat(manager.list()).anySatisfy(vm -> assertThat(vm.name()).startsWith("mon-"));
        assertThat(agent.as(alice, "vm", "stop", "web").exitCode()).isZero();
        assertThat(manager.list()).noneSatisfy(vm -> assertThat(vm.name()).startsWith("mon-"));
        assertThat(agent.as(alice, "env", "show", "web").exitCode()).isNotZero();
        try (var entries = Files.list(agent.home.resolve("environments"))) {
            assertThat(entries.toList()).isEmpty();
        }
    }

    private static String vmIdSeenFromTheMonitor() throws Exception {
        Cli.Result info = agent.as(alice, "env", "exec", "--timeout", "300", "web", "--", "veggur", "vmi", "info",
                "--socket", "serial:io.veggur.vmi");
        assertThat(info.exitCode()).as(info.stderr()).isZero();
        return info.stdout().lines().filter(line -> line.startsWith("vm id")).findFirst().orElseThrow().split("\\s+")[2];
    }

    /** Refusals reach the audit log when the agent collects them (every second). */
    private static void awaitAudit(String decision, String prefix) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (true) {
            List<String> lines = agent.audit(decision).stream().map(record -> record.path("actor").asText() + " "
                    + record.path("action").asText() + " " + record.path("target").asText()).toList();
            if (lines.stream().anyMatch(line -> line.startsWith(prefix)) || System.nanoTime() > deadline) {
                assertThat(lines).anySatisfy(line -> assertThat(line).startsWith(prefix));
                return;
            }
            Thread.sleep(200);
        }
    }
}
