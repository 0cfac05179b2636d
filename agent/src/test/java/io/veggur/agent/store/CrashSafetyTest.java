package io.veggur.agent.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.veggur.agent.audit.AuditRecord;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A writer killed with SIGKILL in the middle of its work loses nothing it committed and leaves no half change. */
class CrashSafetyTest {
    private static final int STEPS_BEFORE_KILL = 10;

    @TempDir
    Path directory;

    @Test
    @Timeout(60)
    void reopen_afterKillMinus9MidWrite_keepsEveryCommitAndAnIntactChain() throws Exception {
        Path file = directory.resolve("agent.db");
        Process writer = new ProcessBuilder(javaExecutable(), "--enable-native-access=ALL-UNNAMED",
                "-Djava.util.logging.config.file=" + System.getProperty("java.util.logging.config.file", ""),
                "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
                CrashingWriter.class.getName(), file.toString())
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        int lastReported = -1;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(writer.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; lastReported < STEPS_BEFORE_KILL && (line = out.readLine()) != null; ) {
                if (line.startsWith("committed ")) {
                    lastReported = Integer.parseInt(line.substring("committed ".length()));
                }
            }
            writer.destroyForcibly(); // SIGKILL, while the writer is somewhere inside its next steps
            assertThat(writer.waitFor(10, TimeUnit.SECONDS)).isTrue();
        } finally {
            writer.destroyForcibly();
        }
        assertThat(lastReported).as("steps the writer reported").isEqualTo(STEPS_BEFORE_KILL);

        try (AgentStore store = AgentStore.open(file)) {
            Tenant owner = store.tenant("owner").orElseThrow();
            for (int step = 0; step <= lastReported; step++) {
                Tenant tenant = store.tenant("t" + step).orElseThrow();
                assertThat(store.visibleVm(tenant, new VmRef("owner", "vm" + step))).as("step " + step).isPresent();
            }
            // Whatever the kill interrupted is either wholly there or wholly absent, with its audit record.
            List<AuditRecord> records = store.audit().records(0, 10_000);
            assertThat(count(records, "tenant.create")).isEqualTo(store.tenants().size());
            assertThat(count(records, "vm.create")).isEqualTo(store.visibleVms(owner).size());
            assertThat(count(records, "grant.set")).isEqualTo(
                    store.visibleVms(owner).stream().mapToLong(vm -> store.grants(owner, vm.vm().name()).size()).sum());
            assertThat(store.audit().verify().intact()).isTrue();
        }
    }

    private static long count(List<AuditRecord> records, String action) {
        return records.stream().filter(r -> r.entry().action().equals(action)).count();
    }

    private static String javaExecutable() {
        return ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }
}
