package io.veggur.host.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Against a real firmware-only QEMU 7.2 (TCG, started with -S). */
@Timeout(60)
class QmpClientTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(5);

    @TempDir
    Path directory;
    private TestQemu qemu;
    private QmpClient qmp;

    @BeforeEach
    void startQemu() throws Exception {
        qemu = TestQemu.start(directory, 1);
        qmp = QmpClient.connect(qemu.qmpSocket(), TIMEOUT);
    }

    @AfterEach
    void stopQemu() throws Exception {
        if (qmp != null) {
            qmp.close();
        }
        if (qemu != null) {
            qemu.close();
        }
    }

    @Test
    void queryStatus_heldBySminusS_isPrelaunch() throws IOException {
        assertThat(qmp.queryStatus()).isEqualTo("prelaunch");
    }

    @Test
    void execute_unknownCommand_throwsCommandNotFound() throws IOException {
        assertThatThrownBy(() -> qmp.execute("no-such-command"))
                .isInstanceOfSatisfying(QmpException.class, e -> {
                    assertThat(e.errorClass()).isEqualTo("CommandNotFound");
                    assertThat(e.description()).contains("no-such-command");
                    assertThat(e.command()).isEqualTo("no-such-command");
                });
        assertThat(qmp.queryStatus()).as("connection still usable").isEqualTo("prelaunch");
    }

    @Test
    void execute_withArguments_passesThem() throws IOException {
        JsonNode reply = qmp.execute("human-monitor-command",
                JsonNodeFactory.instance.objectNode().put("command-line", "info version"));

        assertThat(reply.asText()).startsWith("7.");
    }

    @Test
    void execute_contThenStop_eventsArriveBeforeTheReply() throws IOException {
        List<QmpEvent> events = new CopyOnWriteArrayList<>();
        qmp.addEventListener(events::add);
        Instant before = Instant.now();

        qmp.execute("cont");
        assertThat(events).extracting(QmpEvent::name).containsExactly("RESUME");
        assertThat(qmp.queryStatus()).isEqualTo("running");
        qmp.execute("stop");

        assertThat(events).extracting(QmpEvent::name).containsExactly("RESUME", "STOP");
        assertThat(events.getFirst().timestamp()).isAfter(before.minusSeconds(5));
        assertThat(events.getFirst().data().isObject()).isTrue();
        assertThat(qmp.queryStatus()).isEqualTo("paused");
    }

    @Test
    void execute_concurrentCallers_eachGetTheirOwnReply() throws Exception {
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        for (int i = 0; i < 8; i++) {
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    for (int j = 0; j < 20; j++) {
                        assertThat(qmp.queryStatus()).isEqualTo("prelaunch");
                        assertThat(qmp.execute("query-name").isObject()).isTrue();
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }));
        }
        for (Thread thread : threads) {
            thread.join();
        }

        assertThat(failures).isEmpty();
    }

    @Test
    void quit_qemuExits_closeFutureFailsWithEofAndCallsFail() throws Exception {
        qmp.execute("quit");

        assertThatThrownBy(() -> qmp.closeFuture().toCompletableFuture().get(5, TimeUnit.SECONDS))
                .isInstanceOf(ExecutionException.class)
                .cause().isInstanceOf(EOFException.class);
        assertThatThrownBy(qmp::queryStatus).isInstanceOf(IOException.class).hasMessageContaining("closed");
        assertThat(qemu.waitForExit(5000)).isTrue();
    }

    @Test
    void connect_secondClientWhileFirstConnected_timesOutWaitingForGreeting() {
        assertThatThrownBy(() -> QmpClient.connect(qemu.qmpSocket(), Duration.ofMillis(500)).close())
                .isInstanceOf(SocketTimeoutException.class)
                .hasMessageContaining("greeting");
    }

    @Test
    void close_byClient_completesCloseFutureNormally() throws Exception {
        qmp.close();

        assertThat(qmp.closeFuture().toCompletableFuture().get(1, TimeUnit.SECONDS)).isNull();
        assertThatThrownBy(qmp::queryStatus).isInstanceOf(IOException.class);
    }
}
