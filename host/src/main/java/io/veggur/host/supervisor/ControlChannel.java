package io.veggur.host.supervisor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.veggur.host.server.AccessPolicy;
import io.veggur.host.server.IntrospectedVm;
import io.veggur.host.server.IntrospectionServer;
import io.veggur.host.server.RefusalLog;
import io.veggur.host.server.Role;
import io.veggur.host.vm.VeggurHome;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * The supervisor's private control socket ({@code private/control.sock}, reachable only by whoever may enter the
 * VM's 0700 private directory, i.e. the host's trusted side). It opens and closes extra introspection sockets, each
 * in a directory of its own and bound to a role: one per analysis environment, so that what an environment may do is
 * enforced by the socket it holds, and revoking it closes its live sessions at once.
 *
 * <p>Protocol: one JSON object per line each way.
 * {@code {"op":"open","id":ID,"directory":ABS_PATH,"role":ROLE,"descriptor":BOOL}} ({@code descriptor}, default true:
 * whether the socket grants the read-only RAM descriptor; false for sockets relayed to TCP or a serial port),
 * {@code {"op":"close","id":ID}}, {@code {"op":"list"}}, {@code {"op":"refusals","after":SEQ}} (what the VM's
 * sockets refused since SEQ, for the agent's audit log; see {@link RefusalLog}); answers carry {@code "ok"} and either results or
 * {@code "error"}. Opening an id that is open with the same directory, role and descriptor choice is a no-op, so a restarted agent can
 * replay what it believes is open.
 */
final class ControlChannel implements AutoCloseable {
    private static final Logger LOG = System.getLogger(ControlChannel.class.getName());
    private static final Pattern ID = Pattern.compile("[a-z0-9][a-z0-9-]{0,63}");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_LINE = 4096;
    private static final int MAX_REFUSALS_PER_ANSWER = 256;

    private record Opened(Path directory, AccessPolicy policy, IntrospectionServer server) {}

    private final IntrospectedVm vm;
    private final Role ceiling;
    private final Path path;
    private final ServerSocketChannel channel;
    private final Map<String, Opened> opened = new ConcurrentHashMap<>();

    ControlChannel(Path path, IntrospectedVm vm, Role ceiling) throws IOException {
        this.vm = vm;
        this.ceiling = ceiling;
        this.path = path;
        Files.deleteIfExists(path);
        this.channel = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        channel.bind(UnixDomainSocketAddress.of(path));
        Thread.ofPlatform().daemon().name("veggur-control").start(this::serve);
    }

    private void serve() {
        while (channel.isOpen()) {
            try (SocketChannel client = channel.accept()) {
                BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(client), StandardCharsets.UTF_8));
                OutputStream out = Channels.newOutputStream(client);
                for (String line; (line = in.readLine()) != null; ) {
                    ObjectNode answer = line.length() > MAX_LINE ? error("request line too long") : answer(line);
                    out.write((JSON.writeValueAsString(answer) + "\n").getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
            } catch (IOException e) {
                if (channel.isOpen()) {
                    LOG.log(Level.WARNING, "control connection failed: " + e.getMessage());
                }
            }
        }
    }

    private ObjectNode answer(String line) {
        try {
            JsonNode request = JSON.readTree(line);
            return switch (request.path("op").asText()) {
                case "open" -> open(request.path("id").asText(), request.path("directory").asText(),
                        Role.parse(request.path("role").asText()), request.path("descriptor").asBoolean(true));
                case "close" -> close(request.path("id").asText());
                case "list" -> list();
                case "refusals" -> refusals(request.path("after").asLong(0));
                default -> error("unknown op '" + request.path("op").asText() + "' (open, close, list, refusals)");
            };
        } catch (IOException | IllegalArgumentException e) {
            return error(e.getMessage());
        }
    }

    private synchronized ObjectNode open(String id, String directory, Role requested, boolean descriptor)
            throws IOException {
        if (!ID.matcher(id).matches()) {
            return error("invalid socket id '" + id + "'");
        }
        Path dir = Path.of(directory);
        if (!dir.isAbsolute()) {
            return error("directory must be absolute");
        }
        AccessPolicy policy = new AccessPolicy(requested.atMost(ceiling), id, descriptor);
        Role role = policy.role();
        Opened existing = opened.get(id);
        if (existing != null) {
            if (existing.directory().equals(dir) && existing.policy().equals(policy)) {
                return ok().put("socket", existing.server().socketPath().toString()).put("role", role.name().toLowerCase());
            }
            return error("socket id '" + id + "' is already open with another directory, role or descriptor choice");
        }
        VeggurHome.privateDirectory(dir);
        IntrospectionServer server = new IntrospectionServer(dir.resolve("vmi.sock"), vm, policy);
        server.start();
        opened.put(id, new Opened(dir, policy, server));
        LOG.log(Level.INFO, "opened socket " + id + " (" + role + ") in " + dir);
        return ok().put("socket", server.socketPath().toString()).put("role", role.name().toLowerCase());
    }

    private synchronized ObjectNode close(String id) throws IOException {
        Opened existing = opened.remove(id);
        if (existing == null) {
            return ok().put("closed", false);
        }
        existing.server().close();
        LOG.log(Level.INFO, "closed socket " + id);
        return ok().put("closed", true);
    }

    private ObjectNode list() {
        ObjectNode answer = ok();
        var sockets = answer.putArray("sockets");
        opened.forEach((id, open) -> sockets.addObject().put("id", id).put("role", open.policy().role().name().toLowerCase())
                .put("socket", open.server().socketPath().toString()));
        return answer;
    }

    private ObjectNode refusals(long after) {
        RefusalLog.Batch batch = vm.refusals().after(after, MAX_REFUSALS_PER_ANSWER);
        ObjectNode answer = ok().put("dropped", batch.dropped()).put("last", batch.lastSeq());
        var list = answer.putArray("refusals");
        batch.refusals().forEach(refusal -> list.addObject().put("seq", refusal.seq())
                .put("time", refusal.time().toEpochMilli()).put("holder", refusal.holder()).put("what", refusal.what()));
        return answer;
    }

    private static ObjectNode ok() {
        return JSON.createObjectNode().put("ok", true);
    }

    private static ObjectNode error(String message) {
        return JSON.createObjectNode().put("ok", false).put("error", message);
    }

    @Override
    public synchronized void close() throws IOException {
        channel.close();
        Files.deleteIfExists(path);
        for (Opened open : opened.values()) {
            open.server().close();
        }
        opened.clear();
    }
}
