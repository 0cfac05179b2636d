package io.veggur.vmi.transport;

import io.veggur.protocol.link.LinkClient;
import java.io.FileInputStream;
import java.io.FileNotFoundException;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Pattern;

/**
 * A virtio-serial port inside a monitoring VM, {@code serial:NAME} (the port's name, {@code io.veggur.vmi} for the
 * introspection link) or {@code serial:/dev/PATH} (the port's device). The port is one byte stream for the VM's
 * whole life; the serial link ({@link LinkClient}, docs/protocol.md "Serial link") carries one introspection session
 * over it per {@link #open()}, and the host ends the session when the process holding the port dies.
 *
 * <p>A port is found as {@code /dev/virtio-ports/NAME} (udev's link) or, without udev, through
 * {@code /sys/class/virtio-ports/vportNpM/name} as {@code /dev/vportNpM}. One process at a time may hold it open.
 */
public record SerialTransport(String port) implements Transport {
    static final Duration OPEN_TIMEOUT = Duration.ofSeconds(5);
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    private static final Path PORT_LINKS = Path.of("/dev/virtio-ports");
    private static final Path PORT_CLASS = Path.of("/sys/class/virtio-ports");
    private static final Path DEVICES = Path.of("/dev");
    private static final int S_IFMT = 0170000;
    private static final int S_IFCHR = 0020000;
    /** A sysfs name file holds a short line; never read more. */
    private static final int MAX_NAME_FILE = 256;

    public SerialTransport {
        if (!port.startsWith("/") && !NAME.matcher(port).matches()) {
            throw new IllegalArgumentException("invalid serial port '" + port + "': expected a port name (letters, "
                    + "digits, '.', '_', '-') or an absolute device path");
        }
    }

    static SerialTransport parse(String endpoint) {
        return new SerialTransport(endpoint.substring("serial:".length()));
    }

    @Override
    public Connection open() throws IOException {
        return open(OPEN_TIMEOUT);
    }

    /** Opens a session, waiting at most {@code timeout} for the host's answer. */
    Connection open(Duration timeout) throws IOException {
        Path device = device(PORT_LINKS, PORT_CLASS, DEVICES);
        String name = "serial port " + port;
        if (!isCharacterDevice(device)) {
            throw new IOException(name + ": " + device + " is not a character device");
        }
        // Two channels on one descriptor: a FileChannel serializes reads and writes on one lock, so a read blocked
        // waiting for the host would hold up every write. The port cannot be opened twice (EBUSY).
        // "rw" adds O_CREAT, harmless on the character device just checked.
        RandomAccessFile file;
        try {
            file = new RandomAccessFile(device.toFile(), "rw");
        } catch (FileNotFoundException e) {
            throw new IOException(name + ": " + openFailure(e.getMessage()));
        }
        FileChannel in = new FileInputStream(file.getFD()).getChannel();
        FileChannel out = new FileOutputStream(file.getFD()).getChannel();
        return connect(name, in, out, timeout);
    }

    @Override
    public String describe() {
        return "serial:" + port;
    }

    /**
     * A session over any pair of blocking channels: the seam that tests use with sockets. The channels are closed with
     * the connection, or at once if no session opens.
     */
    static Connection connect(String name, ReadableByteChannel in, WritableByteChannel out, Duration timeout)
            throws IOException {
        LinkClient link = LinkClient.open(name, in, out, timeout);
        return new Connection() {
            @Override
            public InputStream input() {
                return link.input();
            }

            @Override
            public OutputStream output() {
                return link.output();
            }

            @Override
            public void close() {
                link.close();
            }
        };
    }

    /** The port's device: the path itself, udev's link under {@code links}, or the port named so in {@code ports}. */
    Path device(Path links, Path ports, Path devices) throws IOException {
        if (port.startsWith("/")) {
            Path device = Path.of(port);
            if (!Files.exists(device)) {
                throw new NoSuchFileException(port, null, "no such serial port device");
            }
            return device;
        }
        Path link = links.resolve(port);
        if (Files.exists(link)) {
            return link;
        }
        if (Files.isDirectory(ports)) {
            try (DirectoryStream<Path> entries = Files.newDirectoryStream(ports)) {
                for (Path entry : entries) {
                    if (port.equals(nameOf(entry.resolve("name")))) {
                        return devices.resolve(entry.getFileName().toString());
                    }
                }
            }
        }
        throw new NoSuchFileException(port, null, "no virtio-serial port of this name (looked for " + link + " and in "
                + ports + ")");
    }

    /** The first line of a port's name file; null if it cannot be read (ports may vanish while we look). */
    private static String nameOf(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return new String(in.readNBytes(MAX_NAME_FILE), StandardCharsets.UTF_8).lines()
                    .findFirst().orElse("");
        } catch (IOException e) {
            return null;
        }
    }

    private static boolean isCharacterDevice(Path device) throws IOException {
        return ((Integer) Files.getAttribute(device, "unix:mode") & S_IFMT) == S_IFCHR;
    }

    /** The JDK says "PATH (reason)"; the reason, and what it means for a port. */
    private static String openFailure(String message) {
        String reason = message.contains("(") ? message.substring(message.lastIndexOf('(') + 1).replace(")", "")
                : message;
        if (reason.contains("busy")) {
            return "in use by another process (a port can be open in one process at a time)";
        }
        return "cannot open: " + reason;
    }
}
