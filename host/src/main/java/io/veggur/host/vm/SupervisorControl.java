package io.veggur.host.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/** Client of a supervisor's control socket (see the supervisor's ControlChannel for the protocol). */
public final class SupervisorControl {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static final Duration ANSWER_TIMEOUT = Duration.ofSeconds(10);
    private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().name("veggur-control-timeout").factory());
    private final Path socket;

    public SupervisorControl(VmDirectory directory) {
        this.socket = directory.controlSocket();
    }

    /**
     * Opens a socket bound to {@code role} in {@code directory}; returns the socket's path. {@code memoryDescriptor}
     * false: its clients are relayed (TCP, serial) and read memory through the socket.
     */
    public Path open(String id, Path directory, String role, boolean memoryDescriptor) throws IOException {
        ObjectNode request = JSON.createObjectNode().put("op", "open").put("id", id)
                .put("directory", directory.toAbsolutePath().toString()).put("role", role)
                .put("descriptor", memoryDescriptor);
        return Path.of(call(request).path("socket").asText());
    }

    /** Closes the socket and all sessions on it; false if it was not open. */
    public boolean close(String id) throws IOException {
        return call(JSON.createObjectNode().put("op", "close").put("id", id)).path("closed").asBoolean();
    }

    /**
     * Requests the VM's sockets refused after sequence number {@code after}: {@code refusals} (seq, time, holder,
     * what), {@code dropped} (lost before collection) and {@code last} (the newest seq).
     */
    public JsonNode refusals(long after) throws IOException {
        return call(JSON.createObjectNode().put("op", "refusals").put("after", after));
    }

    public JsonNode list() throws IOException {
        return call(JSON.createObjectNode().put("op", "list")).path("sockets");
    }

    /**
     * One request and its answer. A supervisor that does not answer within {@link #ANSWER_TIMEOUT} (wedged, or
     * stopped with SIGSTOP) has its connection closed under it, so no caller (the agent's reconciler, holding a VM's
     * lock) ever waits on it forever.
     */
    private JsonNode call(ObjectNode request) throws IOException {
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ScheduledFuture<?> deadline = TIMER.schedule(() -> {
                try {
                    channel.close();
                } catch (IOException e) {
                    // closing is all that was asked; the blocked call fails either way
                }
            }, ANSWER_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            String line;
            try {
                channel.connect(UnixDomainSocketAddress.of(socket));
                channel.write(ByteBuffer.wrap((JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8)));
                line = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8)).readLine();
            } catch (AsynchronousCloseException e) {
                throw new IOException("the VM supervisor did not answer on its control socket within "
                        + ANSWER_TIMEOUT.toSeconds() + " s");
            } finally {
                deadline.cancel(false);
            }
            if (line == null) {
                throw new IOException("the VM supervisor closed its control socket without answering");
            }
            JsonNode answer = JSON.readTree(line);
            if (!answer.path("ok").asBoolean()) {
                throw new IOException("the VM supervisor refused: " + answer.path("error").asText());
            }
            return answer;
        }
    }
}
