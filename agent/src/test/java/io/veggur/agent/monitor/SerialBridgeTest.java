package io.veggur.agent.monitor;

import static org.assertj.core.api.Assertions.assertThat;

import io.veggur.host.server.AccessPolicy;
import io.veggur.host.server.GuestRam;
import io.veggur.host.server.IntrospectedVm;
import io.veggur.host.server.IntrospectionServer;
import io.veggur.host.server.Role;
import io.veggur.host.server.VcpuControl;
import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Frame;
import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.Register;
import io.veggur.protocol.Reply;
import io.veggur.protocol.Request;
import io.veggur.protocol.WireCodec;
import io.veggur.protocol.link.LinkClient;
import io.veggur.protocol.link.LinkFrame;
import io.veggur.protocol.link.LinkReader;
import io.veggur.protocol.link.LinkType;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The serial bridge between a fake QEMU port (guests are {@link LinkClient}s, or the test writing frames itself) and
 * a real {@link IntrospectionServer} over a 1 MiB RAM file, whose fake vCPUs record pauses: a pause a session holds is
 * released exactly when the server sees that session's connection end.
 */
@Timeout(60)
class SerialBridgeTest {
    private static final Duration OPEN_TIMEOUT = Duration.ofSeconds(5);

    @TempDir
    Path directory;
    private Path portSocket;
    private Path introspectionSocket;
    private GuestRam ram;
    private IntrospectionServer server;
    private final FakeVcpus vcpus = new FakeVcpus();
    private final LinkedBlockingQueue<SerialBridge.Event> events = new LinkedBlockingQueue<>();
    private final List<AutoCloseable> cleanup = new CopyOnWriteArrayList<>();

    @BeforeEach
    void startServer() throws IOException {
        portSocket = directory.resolve("port.sock");
        Path socketDirectory = Files.createDirectory(directory.resolve("socket"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        introspectionSocket = socketDirectory.resolve("vmi.sock");
        Path ramFile = directory.resolve("ram");
        try (RandomAccessFile file = new RandomAccessFile(ramFile.toFile(), "rw")) {
            file.setLength(1 << 20);
        }
        ram = new GuestRam(ramFile, MemoryMap.flat(1 << 20));
        server = new IntrospectionServer(introspectionSocket, new IntrospectedVm("vm-test", ram, vcpus),
                new AccessPolicy(Role.TRACE, "test", false));
        server.start();
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable resource : cleanup.reversed()) {
            resource.close();
        }
        server.close();
        ram.close();
    }

    @Test
    void eachOpen_getsAFreshIntrospectionConnection() throws Exception {
        FakeQemuPort port = port();
        SerialBridge bridge = bridge(introspectionSocket);
        SocketChannel connection = port.awaitConnection();
        port.relay(connection);

        FakeQemuPort.Guest first = port.open(connection, new byte[0]);
        try (LinkClient client = LinkClient.open("port", first.in, first.out, OPEN_TIMEOUT)) {
            assertThat(call(client, 1, new Request.Hello(1, 1))).isInstanceOf(Reply.Welcome.class);
        }
        first.exit();
        FakeQemuPort.Guest second = port.open(connection, new byte[0]);
        try (LinkClient client = LinkClient.open("port", second.in, second.out, OPEN_TIMEOUT)) {
            // A new connection, so the server wants a handshake again.
            assertThat(call(client, 1, new Request.Pause())).isInstanceOfSatisfying(Reply.Error.class,
                    error -> assertThat(error.code()).isEqualTo(ErrorCode.HANDSHAKE_REQUIRED));
        }
        second.exit();

        assertThat(await(SerialBridge.Event.SessionOpened.class)).isEqualTo(new SerialBridge.Event.SessionOpened(1));
        assertThat(await(SerialBridge.Event.SessionClosed.class)).isEqualTo(
                new SerialBridge.Event.SessionClosed(1, "closed by the guest"));
        assertThat(await(SerialBridge.Event.SessionOpened.class)).isEqualTo(new SerialBridge.Event.SessionOpened(2));
        bridge.close();
    }

    @Test
    void killedGuest_hasItsConnectionClosedWithinTheTimeout_releasingItsPause() throws Exception {
        FakeQemuPort port = port();
        bridge(introspectionSocket);
        SocketChannel connection = port.awaitConnection();
        port.relay(connection);
        FakeQemuPort.Guest guest = port.open(connection, new byte[0]);
        LinkClient client = LinkClient.open("port", guest.in, guest.out, OPEN_TIMEOUT);
        cleanup.add(client);
        call(client, 1, new Request.Hello(1, 1));
        assertThat(call(client, 2, new Request.Pause())).isEqualTo(new Reply.Ok());
        assertThat(vcpus.paused).isTrue();

        long killed = System.nanoTime();
        guest.exit();
        while (vcpus.paused && System.nanoTime() - killed < TimeUnit.SECONDS.toNanos(5)) {
            Thread.sleep(10);
        }
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);

        assertThat(vcpus.paused).isFalse();
        assertThat(millis).isBetween(SerialBridge.IDLE_TIMEOUT.toMillis() - 300, 2000L);
        assertThat(await(SerialBridge.Event.SessionClosed.class)).isEqualTo(
                new SerialBridge.Event.SessionClosed(1, "no frame from the guest for 1500 ms"));
    }

    @Test
    void staleBytesOfADeadSession_areSkippedByTheNextOne() throws Exception {
        FakeQemuPort port = port();
        bridge(introspectionSocket);
        SocketChannel connection = port.awaitConnection();
        port.relay(connection);
        FakeQemuPort.Guest dead = port.open(connection, new byte[0]);
        LinkClient deadClient = LinkClient.open("port", dead.in, dead.out, OPEN_TIMEOUT);
        cleanup.add(deadClient);
        call(deadClient, 1, new Request.Hello(1, 1));
        // Replies to these are on their way when the process dies without reading them.
        for (int id = 2; id < 20; id++) {
            send(deadClient.output(), id, new Request.ReadPhysical(List.of(new Request.PhysicalRange(0, 64 * 1024))));
        }
        deadClient.output().flush();
        Thread.sleep(100);
        dead.exit();

        byte[] frame = LinkFrame.data(new byte[200], 0, 200).encode().array();
        FakeQemuPort.Guest next = port.open(connection, Arrays.copyOfRange(frame, 80, frame.length));
        try (LinkClient client = LinkClient.open("port", next.in, next.out, OPEN_TIMEOUT)) {
            assertThat(call(client, 1, new Request.Hello(1, 1))).isInstanceOf(Reply.Welcome.class);
            assertThat(call(client, 2, new Request.ReadPhysical(List.of(new Request.PhysicalRange(0, 8)))))
                    .isInstanceOfSatisfying(Reply.Data.class, data -> assertThat(data.bytes()).hasSize(8));
        }
        next.exit();
    }

    @ParameterizedTest
    @ValueSource(strings = {"bad magic", "unknown type", "host type", "oversized length", "short nonce"})
    void malformedBytesFromTheGuest_endTheSession_andTheNextOpenWorks(String kind) throws Exception {
        FakeQemuPort port = port();
        bridge(introspectionSocket);
        SocketChannel connection = port.awaitConnection();
        LinkReader fromBridge = new LinkReader(connection, LinkType.Sender.HOST);
        byte[] first = nonce(1);
        write(connection, LinkFrame.open(first));
        assertThat(fromBridge.skipToAnswer(first)).isEqualTo(LinkFrame.opened(first));

        byte[] garbage = switch (kind) {
            case "bad magic" -> "GET / HTTP/1.0\r\n\r\n".getBytes();
            case "unknown type" -> new byte[] {'V', 'G', 'L', 1, 0x42, 0, 0};
            case "host type" -> new byte[] {'V', 'G', 'L', 1, (byte) 0x81, 16, 0};
            case "oversized length" -> new byte[] {'V', 'G', 'L', 1, 0x02, (byte) 0xff, (byte) 0xff};
            default -> new byte[] {'V', 'G', 'L', 1, 0x01, 8, 0};
        };
        connection.write(ByteBuffer.wrap(garbage));

        LinkFrame closed = fromBridge.next();
        assertThat(closed.type()).isEqualTo(LinkType.CLOSED);
        assertThat(closed.nonce()).isEqualTo(first);
        assertThat(closed.reason()).startsWith("protocol violation: ");
        assertThat(await(SerialBridge.Event.ProtocolViolation.class).problem()).isEqualTo(
                closed.reason().substring("protocol violation: ".length()));
        byte[] second = nonce(2);
        write(connection, LinkFrame.open(second));
        assertThat(fromBridge.skipToAnswer(second)).isEqualTo(LinkFrame.opened(second));
        write(connection, dataFrames(1, new Request.Hello(1, 1)));
        assertThat(reply(fromBridge)).isInstanceOf(Reply.Welcome.class);
    }

    @Test
    void framesWithoutASession_areAnsweredWithOneClosed() throws Exception {
        FakeQemuPort port = port();
        bridge(introspectionSocket);
        SocketChannel connection = port.awaitConnection();

        LinkReader fromBridge = new LinkReader(connection, LinkType.Sender.HOST);
        for (int i = 0; i < 3; i++) {
            write(connection, LinkFrame.keepalive());
        }
        assertThat(fromBridge.next()).isEqualTo(LinkFrame.closed(null, "no open session"));
        write(connection, LinkFrame.open(nonce(1)));

        // Only one CLOSED for the three keepalives: the next frame is the answer to the OPEN.
        assertThat(fromBridge.next()).isEqualTo(LinkFrame.opened(nonce(1)));
    }

    @Test
    void missingIntrospectionSocket_refusesTheOpen() throws Exception {
        FakeQemuPort port = port();
        bridge(directory.resolve("nothing-here.sock"));
        SocketChannel connection = port.awaitConnection();

        write(connection, LinkFrame.open(nonce(1)));

        LinkReader fromBridge = new LinkReader(connection, LinkType.Sender.HOST);
        assertThat(fromBridge.skipToAnswer(nonce(1))).isEqualTo(
                LinkFrame.closed(nonce(1), "the introspection socket is not available"));
        assertThat(await(SerialBridge.Event.SessionRefused.class).reason())
                .startsWith("cannot connect to the introspection socket: ");
    }

    @Test
    void portSocketLateOrDropped_bridgeConnectsAndReconnects() throws Exception {
        bridge(introspectionSocket);
        assertThat(await(SerialBridge.Event.PortDisconnected.class).reason())
                .startsWith("cannot connect to the port socket: ");
        Thread.sleep(300);
        FakeQemuPort port = port();
        SocketChannel connection = port.awaitConnection();
        await(SerialBridge.Event.PortConnected.class);
        write(connection, LinkFrame.open(nonce(1)));
        assertThat(new LinkReader(connection, LinkType.Sender.HOST).next()).isEqualTo(LinkFrame.opened(nonce(1)));
        await(SerialBridge.Event.SessionOpened.class);

        long dropped = System.nanoTime();
        connection.close();

        assertThat(await(SerialBridge.Event.SessionClosed.class)).isEqualTo(
                new SerialBridge.Event.SessionClosed(1, "the port connection ended"));
        assertThat(await(SerialBridge.Event.PortDisconnected.class).reason()).isEqualTo("the port socket closed");
        SocketChannel again = port.awaitConnection();
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - dropped)).isLessThan(2000);
        LinkReader fromBridge = new LinkReader(again, LinkType.Sender.HOST);
        // A guest still in the session that ended with the old connection learns that it did.
        write(again, LinkFrame.keepalive());
        assertThat(fromBridge.next()).isEqualTo(LinkFrame.closed(null, "no open session"));
        write(again, LinkFrame.open(nonce(2)));
        assertThat(fromBridge.next()).isEqualTo(LinkFrame.opened(nonce(2)));
    }

    @Test
    void close_endsTheSessionAndReturnsPromptly() throws Exception {
        FakeQemuPort port = port();
        SerialBridge bridge = SerialBridge.start(portSocket, introspectionSocket, events::add);
        SocketChannel connection = port.awaitConnection();
        port.relay(connection);
        FakeQemuPort.Guest guest = port.open(connection, new byte[0]);
        LinkClient client = LinkClient.open("port", guest.in, guest.out, OPEN_TIMEOUT);
        cleanup.add(client);
        call(client, 1, new Request.Hello(1, 1));
        call(client, 2, new Request.Pause());

        long start = System.nanoTime();
        bridge.close();

        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(1000);
        long waited = System.nanoTime();
        while (vcpus.paused && System.nanoTime() - waited < TimeUnit.SECONDS.toNanos(2)) {
            Thread.sleep(10);
        }
        assertThat(vcpus.paused).isFalse();
        assertThat(await(SerialBridge.Event.SessionClosed.class).reason()).isEqualTo("the bridge stopped");
    }

    @Test
    void openFlood_opensAtMostOneConnectionPerSpacing() throws Exception {
        FakeQemuPort port = port();
        bridge(introspectionSocket);
        SocketChannel connection = port.awaitConnection();
        LinkReader fromBridge = new LinkReader(connection, LinkType.Sender.HOST);

        long start = System.nanoTime();
        for (int i = 1; i <= 20; i++) {
            write(connection, LinkFrame.open(nonce(i)));
        }
        assertThat(fromBridge.skipToAnswer(nonce(20))).isEqualTo(LinkFrame.opened(nonce(20)));

        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start))
                .isGreaterThanOrEqualTo(19 * SerialBridge.OPEN_SPACING.toMillis());
    }

    @Test
    void guestFloodTowardsAStuckUpstream_isHeldBackNotBuffered() throws Exception {
        Path stuck = directory.resolve("stuck.sock");
        ServerSocketChannel upstream = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        cleanup.add(upstream);
        upstream.bind(UnixDomainSocketAddress.of(stuck));
        Thread.ofVirtual().start(() -> {
            try {
                cleanup.add(upstream.accept()); // and never read
            } catch (IOException e) {
                // The test ended.
            }
        });
        FakeQemuPort port = port();
        bridge(stuck);
        SocketChannel connection = port.awaitConnection();
        write(connection, LinkFrame.open(nonce(1)));
        assertThat(new LinkReader(connection, LinkType.Sender.HOST).skipToAnswer(nonce(1))).isNotNull();

        long written = writeUntilStuck(connection, LinkFrame.data(new byte[LinkFrame.MAX_DATA], 0,
                LinkFrame.MAX_DATA).encode());

        // Kernel socket buffers on two hops and one frame in the bridge; nothing grows with the flood.
        assertThat(written).isGreaterThan(LinkFrame.MAX_DATA).isLessThan(4L << 20);
        // Blocked on the upstream is not silence: the session survives well past the idle timeout.
        Thread.sleep(SerialBridge.IDLE_TIMEOUT.toMillis() + 500);
        assertThat(events).noneMatch(SerialBridge.Event.SessionClosed.class::isInstance);
    }

    @Test
    void upstreamFloodTowardsAGuestThatDoesNotRead_isHeldBackNotBuffered() throws Exception {
        Path flooding = directory.resolve("flood.sock");
        ServerSocketChannel upstream = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        cleanup.add(upstream);
        upstream.bind(UnixDomainSocketAddress.of(flooding));
        AtomicLong flooded = new AtomicLong();
        Thread.ofVirtual().start(() -> {
            try (SocketChannel client = upstream.accept()) {
                ByteBuffer chunk = ByteBuffer.allocate(64 * 1024);
                while (true) {
                    flooded.addAndGet(client.write(chunk.clear()));
                }
            } catch (IOException e) {
                // The bridge ended the session.
            }
        });
        FakeQemuPort port = port();
        bridge(flooding);
        SocketChannel connection = port.awaitConnection();
        write(connection, LinkFrame.open(nonce(1)));
        Thread keepalive = Thread.ofVirtual().start(() -> {
            try {
                while (true) {
                    Thread.sleep(250);
                    write(connection, LinkFrame.keepalive());
                }
            } catch (IOException | InterruptedException e) {
                // The test ended.
            }
        });

        long previous = -1;
        while (flooded.get() != previous) {
            previous = flooded.get();
            Thread.sleep(500);
        }
        keepalive.interrupt();

        // Socket buffers on two hops and at most the bridge's outbox of 8 frames plus one being read.
        assertThat(previous).isGreaterThan(0).isLessThan(4L << 20);
        assertThat(events).noneMatch(SerialBridge.Event.SessionClosed.class::isInstance);
    }

    private FakeQemuPort port() throws IOException {
        FakeQemuPort port = new FakeQemuPort(portSocket);
        cleanup.add(port);
        return port;
    }

    private SerialBridge bridge(Path upstream) {
        SerialBridge bridge = SerialBridge.start(portSocket, upstream, events::add);
        cleanup.add(bridge);
        return bridge;
    }

    @SuppressWarnings("unchecked")
    private <T extends SerialBridge.Event> T await(Class<T> type) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (System.nanoTime() < deadline) {
            SerialBridge.Event event = events.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
            if (type.isInstance(event)) {
                return (T) event;
            }
        }
        throw new AssertionError("no " + type.getSimpleName() + " within 5 s");
    }

    private static Object call(LinkClient client, int id, Request request) throws IOException {
        send(client.output(), id, request);
        client.output().flush();
        return receive(client.input());
    }

    private static void send(OutputStream out, int id, Request request) throws IOException {
        ByteBuffer frame = WireCodec.encode(id, request);
        out.write(frame.array(), frame.arrayOffset(), frame.limit());
    }

    /** The next reply, skipping events. */
    private static Object receive(InputStream in) throws IOException {
        Frame frame = Frame.read(in);
        while (frame.requestId() == 0) {
            frame = Frame.read(in);
        }
        return WireCodec.decodeServerMessage(frame);
    }

    /** The next reply carried in DATA frames read directly from the port. */
    private static Object reply(LinkReader fromBridge) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        while (true) {
            LinkFrame frame = fromBridge.next();
            assertThat(frame.type()).isEqualTo(LinkType.DATA);
            bytes.write(frame.payload());
            byte[] sofar = bytes.toByteArray();
            if (sofar.length >= 4 && sofar.length >= 4 + ByteBuffer.wrap(sofar).order(ByteOrder.LITTLE_ENDIAN).getInt()) {
                return receive(new ByteArrayInputStream(sofar));
            }
        }
    }

    private static LinkFrame[] dataFrames(int id, Request request) {
        ByteBuffer bytes = WireCodec.encode(id, request);
        return new LinkFrame[] {LinkFrame.data(bytes.array(), bytes.arrayOffset(), bytes.limit())};
    }

    private static void write(SocketChannel channel, LinkFrame... frames) throws IOException {
        for (LinkFrame frame : frames) {
            ByteBuffer bytes = frame.encode();
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
        }
    }

    /** Writes {@code frame} over and over without blocking until nothing moves for 500 ms; returns the bytes taken. */
    private static long writeUntilStuck(SocketChannel channel, ByteBuffer frame) throws Exception {
        channel.configureBlocking(false);
        long written = 0;
        long quietSince = System.nanoTime();
        while (System.nanoTime() - quietSince < TimeUnit.MILLISECONDS.toNanos(500)) {
            int n = channel.write(frame);
            if (n > 0) {
                written += n;
                quietSince = System.nanoTime();
            } else {
                Thread.sleep(10);
            }
            if (!frame.hasRemaining()) {
                frame.rewind();
            }
        }
        return written;
    }

    private static byte[] nonce(int seed) {
        byte[] nonce = new byte[LinkFrame.NONCE_BYTES];
        new Random(seed).nextBytes(nonce);
        return nonce;
    }

    /** vCPUs that only record whether a client holds the VM paused. */
    private static final class FakeVcpus implements VcpuControl {
        volatile boolean paused;

        @Override
        public int vcpuCount() {
            return 1;
        }

        @Override
        public Map<Register, Long> registers(int vcpu) {
            return Map.of(Register.RIP, 0L);
        }

        @Override
        public void pause() {
            paused = true;
        }

        @Override
        public void resume() {
            paused = false;
        }
    }
}
