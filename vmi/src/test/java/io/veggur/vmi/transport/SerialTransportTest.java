package io.veggur.vmi.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.veggur.protocol.link.LinkFrame;
import io.veggur.protocol.link.LinkReader;
import io.veggur.protocol.link.LinkType;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The serial transport: endpoint parsing, finding a port by name, and sessions over the link against a host played
 * by the test (the bridge itself is tested in the agent). No virtio-serial port exists on these machines; a pty stands
 * in where a real character device matters.
 */
@Timeout(30)
class SerialTransportTest {
    @TempDir
    Path directory;

    @Test
    void parse_nameOrDevice_givesSerialTransport() {
        assertThat(Transport.parse("serial:io.veggur.vmi")).isEqualTo(new SerialTransport("io.veggur.vmi"));
        assertThat(Transport.parse("serial:/dev/vport2p1")).isEqualTo(new SerialTransport("/dev/vport2p1"));
        assertThat(Transport.parse("serial:io.veggur.vmi").describe()).isEqualTo("serial:io.veggur.vmi");
    }

    @ParameterizedTest
    @ValueSource(strings = {"serial:", "serial:../vport0p1", "serial:a b", "serial:-x", "serial:dev/vport0p1"})
    void parse_malformedEndpoint_isRefused(String endpoint) {
        assertThatThrownBy(() -> Transport.parse(endpoint)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("invalid serial port");
    }

    @Test
    void parse_unknownScheme_listsTheNewOnes() {
        assertThatThrownBy(() -> Transport.parse("ftp://x")).hasMessageContaining("serial:NAME")
                .hasMessageContaining("vsock:CID:PORT");
    }

    @Test
    void device_udevLinkFirst_thenSysfsNames() throws IOException {
        Path links = Files.createDirectories(directory.resolve("virtio-ports"));
        Path ports = directory.resolve("class");
        Files.createDirectories(ports.resolve("vport1p1"));
        Files.writeString(ports.resolve("vport1p1/name"), "org.qemu.guest_agent.0\n");
        Files.createDirectories(ports.resolve("vport1p2"));
        Files.writeString(ports.resolve("vport1p2/name"), "io.veggur.vmi\n");
        Files.createDirectories(ports.resolve("vport1p3"));
        Path devices = directory.resolve("dev");
        SerialTransport transport = new SerialTransport("io.veggur.vmi");

        assertThat(transport.device(links, ports, devices)).isEqualTo(devices.resolve("vport1p2"));

        Path link = Files.createSymbolicLink(links.resolve("io.veggur.vmi"), devices.resolve("vport1p2"));
        Files.createDirectories(devices);
        Files.createFile(devices.resolve("vport1p2"));
        assertThat(transport.device(links, ports, devices)).isEqualTo(link);
    }

    @Test
    void device_unknownName_saysWhereItLooked() {
        assertThatThrownBy(() -> new SerialTransport("io.veggur.vmi").device(directory.resolve("links"),
                directory.resolve("class"), directory))
                .isInstanceOf(NoSuchFileException.class)
                .hasMessageContaining("io.veggur.vmi: no virtio-serial port of this name");
    }

    @Test
    void open_notACharacterDevice_isRefused() throws IOException {
        Path file = Files.createFile(directory.resolve("vport0p1"));

        assertThatThrownBy(() -> Transport.parse("serial:" + file).open()).isInstanceOf(IOException.class)
                .hasMessage("serial port " + file + ": " + file + " is not a character device");
        assertThat(Files.size(file)).isZero();
    }

    @Test
    void open_characterDeviceWithoutAnAnswer_failsAndReleasesTheBlockedReader() {
        // A pty is a character device whose reads block like a port's (it echoes our OPEN, which is not an answer).
        assumeTrue(Files.exists(Path.of("/dev/ptmx")), "no /dev/ptmx");
        long start = System.nanoTime();

        assertThatThrownBy(() -> new SerialTransport("/dev/ptmx").open(Duration.ofMillis(300)))
                .isInstanceOf(IOException.class)
                .hasMessage("no answer on serial port /dev/ptmx: no reply to the open request within 300 ms");

        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(1500);
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(
                thread -> thread.getName().startsWith("veggur-link-") && thread.isAlive());
    }

    @Test
    void connect_eachConnectionIsOneSession_echoedByTheHost() throws Exception {
        try (EchoHost host = new EchoHost(directory.resolve("port.sock"))) {
            for (int i = 0; i < 2; i++) {
                SocketChannel guest = host.connectGuest();
                try (Connection connection = SerialTransport.connect("serial port test", guest, guest,
                        Duration.ofSeconds(5))) {
                    byte[] request = ("request " + i).getBytes();
                    connection.output().write(request);
                    connection.output().flush();

                    assertThat(connection.input().readNBytes(request.length)).isEqualTo(request);
                    assertThat(connection.canReceiveFileDescriptors()).isFalse();
                }
            }

            host.awaitCloses(2);
            assertThat(host.opens).hasSize(2);
            assertThat(host.opens.get(0)).isNotEqualTo(host.opens.get(1));
        }
    }

    /** The host end of a link, one guest connection at a time: OPEN gets OPENED, DATA is echoed, CLOSE counted. */
    private static final class EchoHost implements AutoCloseable {
        final List<String> opens = new CopyOnWriteArrayList<>();
        private final List<SocketChannel> channels = new ArrayList<>();
        private final ServerSocketChannel server;
        private int closes;

        EchoHost(Path socket) throws IOException {
            server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(socket));
        }

        SocketChannel connectGuest() throws IOException {
            SocketChannel guest = SocketChannel.open(server.getLocalAddress());
            SocketChannel host = server.accept();
            channels.add(guest);
            channels.add(host);
            Thread.ofVirtual().start(() -> serve(host));
            return guest;
        }

        private void serve(SocketChannel host) {
            LinkReader frames = new LinkReader(host, LinkType.Sender.GUEST);
            try {
                for (LinkFrame frame = frames.next(); frame != null; frame = frames.next()) {
                    switch (frame.type()) {
                        case OPEN -> {
                            opens.add(HexFormat.of().formatHex(frame.nonce()));
                            write(host, LinkFrame.opened(frame.nonce()));
                        }
                        case DATA -> write(host, frame);
                        case CLOSE -> closed();
                        default -> {
                            // KEEPALIVE: nothing to do.
                        }
                    }
                }
            } catch (IOException e) {
                // The guest went away.
            }
        }

        private synchronized void closed() {
            closes++;
            notifyAll();
        }

        synchronized void awaitCloses(int count) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (closes < count && System.nanoTime() < deadline) {
                TimeUnit.NANOSECONDS.timedWait(this, deadline - System.nanoTime());
            }
            assertThat(closes).isEqualTo(count);
        }

        private static void write(SocketChannel channel, LinkFrame frame) throws IOException {
            ByteBuffer bytes = frame.encode();
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (SocketChannel channel : channels) {
                channel.close();
            }
        }
    }
}
