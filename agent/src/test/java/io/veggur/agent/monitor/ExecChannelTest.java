package io.veggur.agent.monitor;

import static java.nio.charset.StandardCharsets.ISO_8859_1;
import static java.nio.charset.StandardCharsets.US_ASCII;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.agent.exec.CapturedOutput;
import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecReaderGoneException;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.exec.ExecStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The host side of the exec protocol against a scripted guest on a UNIX socket (what QEMU's chardev socket is to the
 * host): what the real guest never sends, and the order of events the real guest makes hard to pin down. The real
 * guest is tested in the cli module's ExecChannelIT.
 */
@Timeout(30)
class ExecChannelTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    @TempDir
    Path directory;

    @Test
    void outputIsPassedOnBeforeTheReplyEnds() throws Exception {
        // The guest goes on only once the host's reader has had "first": a host that held output back would hang.
        CountDownLatch seenFirst = new CountDownLatch(1);
        List<String> chunks = new ArrayList<>();
        ExecResult result = exec((nonce, guest) -> {
            guest.send("BEGIN " + nonce, "OUT " + nonce, base64("first\n"));
            assertThat(seenFirst.await(10, TimeUnit.SECONDS)).isTrue();
            guest.send("ERR " + nonce, base64("oops\n"), "OUT " + nonce, base64("second\n"), "END " + nonce + " 3");
        }, (stream, bytes, offset, length) -> {
            chunks.add(stream + ":" + new String(bytes, offset, length, US_ASCII));
            seenFirst.countDown();
        });

        assertThat(result).isEqualTo(ExecResult.exited(3));
        assertThat(chunks).containsExactly("STDOUT:first\n", "STDERR:oops\n", "STDOUT:second\n");
    }

    @Test
    void linesBeforeItsBegin_areAnEarlierCallsReply_andSkipped() throws Exception {
        CapturedOutput output = new CapturedOutput();
        ExecResult result = exec((nonce, guest) -> guest.send("OUT 00000000000000000000000000000000", "x".repeat(10_000),
                base64("stale"),
                "END 00000000000000000000000000000000 0", "BEGIN 00000000000000000000000000000000",
                "BEGIN " + nonce, "END " + nonce + " 0"), output);

        assertThat(result).isEqualTo(ExecResult.exited(0));
        assertThat(output.stdout()).isEmpty();
        assertThat(output.stderr()).isEmpty();
    }

    @Test
    void manyLinesArriving_togetherArePassedOnInFewChunks() throws Exception {
        byte[] data = new byte[300_000];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 31);
        }
        String encoded = Base64.getMimeEncoder(76, new byte[] {'\n'}).encodeToString(data);
        List<Integer> sizes = new ArrayList<>();
        ByteArrayOutputStream received = new ByteArrayOutputStream();
        exec((nonce, guest) -> guest.send("BEGIN " + nonce, "OUT " + nonce, encoded, "END " + nonce + " 0"),
                (stream, bytes, offset, length) -> {
                    sizes.add(length);
                    received.write(bytes, offset, length);
                });

        assertThat(received.toByteArray()).isEqualTo(data);
        // 5 264 lines of 57 bytes or less: chunks hold what arrived together, at most 64 KiB.
        assertThat(sizes).allSatisfy(size -> assertThat(size).isLessThanOrEqualTo(64 << 10));
        assertThat(sizes.size()).isLessThan(100);
    }

    @ParameterizedTest
    @ValueSource(strings = {"YWJj", "OUT %s|not base64!", "OUT %s|YWJj|STDERR", "OUT %s|\u0001\u00ff",
            "OUT %s|END %s 256", "OUT %s|END %s -1", "OUT %s|ERROR %s busy", "OUT 00000000000000000000000000000000|YWJj"})
    void aMalformedLineAfterBegin_isAProtocolError(String lines) {
        // Each case: what follows BEGIN, split at '|'; %s is the nonce.
        assertThatThrownBy(() -> exec((nonce, guest) -> {
            guest.send("BEGIN " + nonce);
            guest.send(lines.replace("%s", nonce).split("\\|"));
        }, new CapturedOutput()))
                .isInstanceOf(IOException.class)
                .isNotInstanceOf(ExecReaderGoneException.class)
                .hasMessageMatching("the monitoring VM sent (a malformed (output line|exit status)|output before naming"
                        + " its stream): [\\x20-\\x7e]*");
    }

    @Test
    void anOverlongLineAfterBegin_isAProtocolError() {
        assertThatThrownBy(() -> exec((nonce, guest) -> guest.send("BEGIN " + nonce, "OUT " + nonce, "A".repeat(4100)),
                new CapturedOutput()))
                .isInstanceOf(IOException.class)
                .hasMessage("the monitoring VM sent a line over 4096 bytes");
    }

    @Test
    void anErrorForThisCall_isARefusal() {
        assertThatThrownBy(() -> exec((nonce, guest) -> guest.send("ERROR " + nonce + " the timeout\u0007 is bad"),
                new CapturedOutput()))
                .isInstanceOf(IOException.class)
                .hasMessage("the monitoring VM refused the command: the timeout? is bad");
    }

    @Test
    void aReaderThatLeaves_closesThePort_whichCancelsTheCommand() {
        CompletableFuture<IOException> guestSaw = new CompletableFuture<>();
        assertThatThrownBy(() -> exec((nonce, guest) -> {
            guest.send("BEGIN " + nonce, "OUT " + nonce, base64("started\n"));
            try {
                guest.readLine();
            } catch (IOException e) {
                guestSaw.complete(e);
            }
        }, (stream, bytes, offset, length) -> {
            throw new IOException("the client left");
        }))
                .isInstanceOf(ExecReaderGoneException.class)
                .hasRootCauseMessage("the client left");

        assertThat(guestSaw).isCompletedWithValueMatching(e -> e instanceof EOFException, "the guest saw the port close");
    }

    @Test
    void aReaderThatLeavesWhileTheCommandIsSilent_isFoundByTheKeepAlive() {
        CompletableFuture<IOException> guestSaw = new CompletableFuture<>();
        assertThatThrownBy(() -> exec((nonce, guest) -> {
            guest.send("BEGIN " + nonce);
            try {
                guest.readLine();
            } catch (IOException e) {
                guestSaw.complete(e);
            }
        }, new ExecOutput() {
            @Override
            public void write(ExecStream stream, byte[] bytes, int offset, int length) {
            }

            @Override
            public void keepAlive() throws IOException {
                throw new IOException("the client left");
            }
        }))
                .isInstanceOf(ExecReaderGoneException.class)
                .hasRootCauseMessage("the client left");

        assertThat(guestSaw).isCompletedWithValueMatching(e -> e instanceof EOFException, "the guest saw the port close");
    }

    private static String base64(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(US_ASCII));
    }

    /** Runs one exec against {@code script}, which plays the guest once the request has come. */
    private ExecResult exec(Script script, ExecOutput output) throws Exception {
        Path socket = directory.resolve("exec.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            CompletableFuture<Void> guest = new CompletableFuture<>();
            Thread.ofVirtual().start(() -> {
                try (SocketChannel connection = server.accept()) {
                    Guest g = new Guest(Channels.newInputStream(connection), Channels.newOutputStream(connection));
                    String[] request = g.readLine().split(" ");
                    assertThat(request).hasSize(4);
                    assertThat(request[0]).isEqualTo("EXEC");
                    script.play(request[1], g);
                    guest.complete(null);
                } catch (Throwable t) {
                    guest.completeExceptionally(t);
                }
            });
            try {
                return ExecChannel.exec(socket, List.of("cmd"), TIMEOUT, output);
            } finally {
                // The script's own assertions count too; it has ended (or closed its end) by the time exec returns.
                guest.get(10, TimeUnit.SECONDS);
            }
        }
    }

    @FunctionalInterface
    private interface Script {
        void play(String nonce, Guest guest) throws Exception;
    }

    private record Guest(InputStream in, OutputStream out) {
        /** Writes the lines in one write, as the guest's base64 does with what it has. */
        void send(String... lines) throws IOException {
            StringBuilder text = new StringBuilder();
            for (String line : lines) {
                text.append(line).append('\n');
            }
            out.write(text.toString().getBytes(ISO_8859_1));
            out.flush();
        }

        String readLine() throws IOException {
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            for (int b = in.read(); b != '\n'; b = in.read()) {
                if (b < 0) {
                    throw new EOFException("the host closed the port");
                }
                line.write(b);
            }
            return line.toString(US_ASCII);
        }
    }
}
