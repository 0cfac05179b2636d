package io.veggur.agent.monitor;

import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecReaderGoneException;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.exec.ExecStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Runs commands in a monitoring VM: the host side of the exec protocol on its virtio-serial port
 * {@value #PORT_NAME}, whose guest side is monitor/veggur-execd (protocol in monitor/README.md). The host connects to
 * QEMU's chardev socket for the port, sends {@code EXEC <nonce> <timeout-seconds> <base64 argv>} and reads
 * {@code BEGIN}, then, while the command runs, {@code OUT} or {@code ERR} each followed by that stream's new output
 * in base64 lines, and {@code END <exit status>}; every marker carries the nonce. Output is passed on as it comes,
 * a few lines at a time (whatever arrived before the host would wait for more, at most 64 KiB).
 *
 * <p>Closing the connection cancels the command: the guest notices within about 0.2 s, kills its process group and
 * sends nothing more for it. That is what happens when the output's reader leaves.
 *
 * <p>The guest is untrusted: lines are bounded ({@value #MAX_LINE} bytes), nothing it sends is buffered beyond one
 * chunk, and every wait ends at a deadline: the command's timeout plus {@link #SLACK} for {@code BEGIN}, plus
 * {@link #REPLY_TIME} more for {@code END} (the guest killed the command at its timeout; what may be left to send is
 * the output of its last moments). A reply the host gave up on may reach the next connection, and lines before
 * {@code BEGIN <nonce>} are skipped for that reason, within the deadline of the call that meets them.
 *
 * <p>A port runs one command at a time: calls in this JVM for the same port wait for each other (at most their
 * timeout plus {@link #SLACK}; their own timeout starts once they have the port). The agent must be the port's only
 * client: QEMU serves one connection at a time and queues the rest.
 */
public final class ExecChannel {
    public static final String PORT_NAME = "io.veggur.exec";
    /** The most output the guest sends per stream; it cuts each at one byte more, so the host can tell. */
    public static final int MAX_OUTPUT_BYTES = 16 << 20;
    /** The argv joined by NUL bytes: its base64 fits the guest's 64 KiB request line. */
    public static final int MAX_ARGV_BYTES = 32 << 10;
    public static final Duration MAX_TIMEOUT = Duration.ofDays(1);
    /** Time the guest has, after the command's timeout, to kill it and start its reply. */
    public static final Duration SLACK = Duration.ofSeconds(5);
    /** Time the guest has, after the command's timeout and {@link #SLACK}, to send the rest of its reply. */
    public static final Duration REPLY_TIME = Duration.ofSeconds(60);
    /** The most decoded output passed on in one write. */
    private static final int CHUNK = 64 << 10;
    /** Base64 lines are 76 characters and markers under 100; a longer line is not from veggur-execd. */
    private static final int MAX_LINE = 4096;
    /** 128 + SIGKILL: the status the guest reports for a command it killed at its timeout. */
    private static final int KILLED = 137;
    private static final SecureRandom RANDOM = new SecureRandom();
    /** Guarded by itself; an entry lives while a call holds or waits for its port. */
    private static final Map<Path, PortLock> LOCKS = new HashMap<>();

    private ExecChannel() {}

    /**
     * Runs {@code argv} (no shell in between; stdin /dev/null) in the monitoring VM whose exec port QEMU serves at
     * {@code portSocket}, passes its stdout and stderr (at most {@value #MAX_OUTPUT_BYTES} + 1 bytes of each: the
     * guest's cut) to {@code output} as they come, kills it after {@code timeout} (whole seconds, rounded up), and
     * returns its exit status. A command that outlived its timeout, or whose reply did not begin within
     * {@link #SLACK} after it (or end within {@link #REPLY_TIME} after that), comes back as timed out.
     *
     * @throws IllegalArgumentException for an empty argv or program name, an argument holding a NUL byte, an argv over
     *         {@value #MAX_ARGV_BYTES} bytes, or a timeout outside (0, 1 day]
     * @throws ExecReaderGoneException if {@code output} failed: the command was cancelled
     * @throws IOException if the port cannot be reached, stays busy for longer than the timeout, closes, or the
     *         guest breaks the protocol or refuses the request
     */
    public static ExecResult exec(Path portSocket, List<String> argv, Duration timeout, ExecOutput output)
            throws IOException {
        if (timeout.isNegative() || timeout.isZero() || timeout.compareTo(MAX_TIMEOUT) > 0) {
            throw new IllegalArgumentException("the timeout must be positive and at most " + MAX_TIMEOUT.toDays()
                    + " day");
        }
        long timeoutSeconds = (timeout.toNanos() + 999_999_999L) / 1_000_000_000L;
        byte[] nonceBytes = new byte[16];
        RANDOM.nextBytes(nonceBytes);
        String nonce = HexFormat.of().formatHex(nonceBytes);
        ByteBuffer request = ByteBuffer.wrap(request(nonce, argv, timeoutSeconds));

        Path key = portSocket.toAbsolutePath().normalize();
        PortLock port = acquire(key);
        try {
            if (!port.lock.tryLock(TimeUnit.SECONDS.toNanos(timeoutSeconds) + SLACK.toNanos(), TimeUnit.NANOSECONDS)) {
                throw new IOException("exec port " + key
                        + " stayed busy with another command for longer than the timeout");
            }
            // The clock starts once the port is ours: the guest gives the command its whole timeout from receipt.
            long commandDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            long beginDeadline = commandDeadline + SLACK.toNanos();
            try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                try {
                    channel.connect(UnixDomainSocketAddress.of(key));
                } catch (IOException e) {
                    throw new IOException("cannot connect to exec port " + key + ": " + e.getMessage(), e);
                }
                // Blocking, so the request leaves in one write: it is far smaller than a socket buffer.
                while (request.hasRemaining()) {
                    channel.write(request);
                }
                channel.configureBlocking(false);
                try (Selector selector = Selector.open()) {
                    channel.register(selector, SelectionKey.OP_READ);
                    Chunks chunks = new Chunks(output);
                    // Closing the channel on the way out, normal or not, is what cancels a command still running.
                    LineReader reader = new LineReader(channel, selector, beginDeadline, chunks::flush, chunks::keepAlive);
                    return receive(reader, nonce, commandDeadline, beginDeadline + REPLY_TIME.toNanos(), chunks);
                }
            } finally {
                port.lock.unlock();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for exec port " + key);
        } finally {
            release(key, port);
        }
    }

    /** {@code EXEC <nonce> <seconds> <base64>\n}: the argument list joined by NUL bytes, base64 without line breaks. */
    public static byte[] request(String nonce, List<String> argv, long timeoutSeconds) {
        // [""] would join to nothing, like no argv at all: the program name must not be empty.
        if (argv.isEmpty() || argv.getFirst().isEmpty()) {
            throw new IllegalArgumentException("exec needs a command");
        }
        ByteArrayOutputStream joined = new ByteArrayOutputStream();
        for (String argument : argv) {
            if (argument.indexOf('\0') >= 0) {
                throw new IllegalArgumentException("an argument holds a NUL byte, which cannot be passed to a program");
            }
            if (joined.size() > 0) {
                joined.write(0);
            }
            joined.writeBytes(argument.getBytes(StandardCharsets.UTF_8));
            if (joined.size() > MAX_ARGV_BYTES) {
                throw new IllegalArgumentException("the arguments exceed " + MAX_ARGV_BYTES + " bytes");
            }
        }
        String line = "EXEC " + nonce + " " + timeoutSeconds + " "
                + Base64.getEncoder().encodeToString(joined.toByteArray()) + "\n";
        return line.getBytes(StandardCharsets.US_ASCII);
    }

    private static ExecResult receive(LineReader reader, String nonce, long commandDeadline, long replyDeadline,
                                      Chunks chunks) throws IOException {
        String begin = "BEGIN " + nonce;
        String stdoutMarker = "OUT " + nonce;
        String stderrMarker = "ERR " + nonce;
        String endPrefix = "END " + nonce + " ";
        String errorPrefix = "ERROR " + nonce + " ";
        while (true) {
            String line = reader.next(true);
            if (line == null) {
                return ExecResult.killedAtTimeout();
            }
            if (line.equals(begin)) {
                reader.extendDeadline(replyDeadline);
                break;
            }
            if (line.startsWith(errorPrefix)) {
                throw new IOException("the monitoring VM refused the command: "
                        + printable(line.substring(errorPrefix.length())));
            }
        }
        while (true) {
            String line = reader.next(false);
            if (line == null) {
                chunks.flush();
                return ExecResult.killedAtTimeout();
            }
            if (line.equals(stdoutMarker)) {
                chunks.switchTo(ExecStream.STDOUT);
            } else if (line.equals(stderrMarker)) {
                chunks.switchTo(ExecStream.STDERR);
            } else if (line.startsWith(endPrefix)) {
                int status = exitStatus(line.substring(endPrefix.length()));
                chunks.flush();
                // The guest starts its clock after ours, so a command it killed always ends after commandDeadline.
                return status == KILLED && System.nanoTime() - commandDeadline >= 0 ? ExecResult.killedAtTimeout()
                        : ExecResult.exited(status);
            } else {
                byte[] decoded;
                try {
                    // The guest's base64 pads every line to whole 4-character groups; the decoder would not insist.
                    if (line.length() % 4 != 0) {
                        throw new IllegalArgumentException("not whole 4-character groups");
                    }
                    decoded = Base64.getDecoder().decode(line);
                } catch (IllegalArgumentException e) {
                    throw new IOException("the monitoring VM sent a malformed output line: " + printable(line));
                }
                chunks.append(decoded, line);
            }
        }
    }

    private static int exitStatus(String text) throws IOException {
        if (!text.matches("[0-9]{1,3}") || Integer.parseInt(text) > 255) {
            throw new IOException("the monitoring VM sent a malformed exit status: " + printable(text));
        }
        return Integer.parseInt(text);
    }

    /** A short, printable excerpt of guest text for an error message. */
    private static String printable(String text) {
        String shown = text.length() > 120 ? text.substring(0, 120) + "..." : text;
        return shown.replaceAll("[^\\x20-\\x7e]", "?");
    }

    private static PortLock acquire(Path key) {
        synchronized (LOCKS) {
            PortLock port = LOCKS.computeIfAbsent(key, k -> new PortLock());
            port.users++;
            return port;
        }
    }

    private static void release(Path key, PortLock port) {
        synchronized (LOCKS) {
            if (--port.users == 0) {
                LOCKS.remove(key);
            }
        }
    }

    private interface IoAction {
        void run() throws IOException;
    }

    private static final class PortLock {
        final ReentrantLock lock = new ReentrantLock();
        int users;   // guarded by LOCKS
    }

    /** Decoded output on its way to the {@link ExecOutput}: one stream's, at most {@value #CHUNK} bytes. */
    private static final class Chunks {
        private final ExecOutput output;
        private final byte[] buffer = new byte[CHUNK];
        private int length;
        private ExecStream stream;

        Chunks(ExecOutput output) {
            this.output = output;
        }

        void switchTo(ExecStream next) throws ExecReaderGoneException {
            flush();
            stream = next;
        }

        /** {@code line}: the guest's text, for the error if no stream was named first. */
        void append(byte[] bytes, String line) throws IOException {
            if (stream == null) {
                throw new IOException("the monitoring VM sent output before naming its stream: " + printable(line));
            }
            if (length + bytes.length > buffer.length) {
                flush();
            }
            System.arraycopy(bytes, 0, buffer, length, bytes.length);   // a line decodes to at most 3 KiB
            length += bytes.length;
        }

        void keepAlive() throws ExecReaderGoneException {
            try {
                output.keepAlive();
            } catch (IOException e) {
                throw new ExecReaderGoneException(e);
            }
        }

        void flush() throws ExecReaderGoneException {
            if (length == 0) {
                return;
            }
            try {
                output.write(stream, buffer, 0, length);
            } catch (IOException e) {
                throw new ExecReaderGoneException(e);
            } finally {
                length = 0;
            }
        }
    }

    /** Lines from the non-blocking channel, each at most {@link #MAX_LINE} bytes, until the deadline. */
    private static final class LineReader {
        private final SocketChannel channel;
        private final Selector selector;
        /** Runs before the reader waits for more input, so what has arrived goes on at once. */
        private final IoAction beforeWait;
        /** Runs after each {@link ExecOutput#KEEP_ALIVE_MILLIS} of waiting in vain. */
        private final IoAction whileSilent;
        private long deadline;
        private final ByteBuffer buffer = ByteBuffer.allocate(64 << 10).limit(0);   // unread: position..limit
        private final byte[] line = new byte[MAX_LINE];

        LineReader(SocketChannel channel, Selector selector, long deadline, IoAction beforeWait, IoAction whileSilent) {
            this.channel = channel;
            this.selector = selector;
            this.deadline = deadline;
            this.beforeWait = beforeWait;
            this.whileSilent = whileSilent;
        }

        void extendDeadline(long later) {
            deadline = Math.max(deadline, later);
        }

        /**
         * The next line without its newline, or null once the deadline has passed. A line over {@link #MAX_LINE}
         * bytes is a protocol error, unless {@code skipping}: then it comes back empty (the caller only compares it).
         */
        String next(boolean skipping) throws IOException {
            int length = 0;
            boolean overlong = false;
            while (true) {
                while (buffer.hasRemaining()) {
                    byte b = buffer.get();
                    if (b == '\n') {
                        return overlong ? "" : new String(line, 0, length, StandardCharsets.ISO_8859_1);
                    }
                    if (length < MAX_LINE) {
                        line[length++] = b;
                    } else if (skipping) {
                        overlong = true;
                    } else {
                        throw new IOException("the monitoring VM sent a line over " + MAX_LINE + " bytes");
                    }
                }
                if (!fill()) {
                    return null;
                }
            }
        }

        private boolean fill() throws IOException {
            buffer.clear();
            if (channel.read(buffer) > 0) {
                buffer.flip();
                return true;
            }
            beforeWait.run();
            long silentSince = System.nanoTime();
            while (true) {
                long now = System.nanoTime();
                long remaining = deadline - now;
                if (remaining <= 0) {
                    buffer.flip();
                    return false;
                }
                if (now - silentSince >= TimeUnit.MILLISECONDS.toNanos(ExecOutput.KEEP_ALIVE_MILLIS)) {
                    whileSilent.run();
                    silentSince = now;
                }
                selector.select(Math.max(1, Math.min(ExecOutput.KEEP_ALIVE_MILLIS,
                        TimeUnit.NANOSECONDS.toMillis(remaining))));
                selector.selectedKeys().clear();
                if (Thread.currentThread().isInterrupted()) {
                    throw new InterruptedIOException("interrupted while waiting for the monitoring VM");
                }
                int read = channel.read(buffer);
                if (read < 0) {
                    throw new EOFException("the monitoring VM's exec port closed (QEMU exited?)");
                }
                if (read > 0) {
                    buffer.flip();
                    return true;
                }
            }
        }
    }
}
