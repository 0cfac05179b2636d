package io.veggur.host.vm;

import java.io.IOException;
import java.io.InputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A VM's serial console, host side only: its output is read from the console log QEMU writes, and input is typed
 * into the private console socket. The test guest answers ground-truth queries here, so this is how tests and the
 * demo learn what the guest itself sees. Reads are bounded in time and never hold the whole log twice.
 */
public final class GuestConsole {
    private static final int MAX_LOG_BYTES = 64 << 20;

    private final Path log;
    private final Path socket;

    public GuestConsole(VmDirectory directory) {
        this.log = directory.consoleLog();
        this.socket = directory.consoleSocket();
    }

    /** Waits until a line of the console log matches, and returns the match. */
    public Matcher awaitLine(Pattern pattern, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            for (String line : lines()) {
                Matcher m = pattern.matcher(line);
                if (m.find()) {
                    return m;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("the guest console showed no line matching '" + pattern + "' within "
                        + timeout.toSeconds() + " s (see " + log + ")");
            }
            Thread.sleep(50);
        }
    }

    /** Types a line into the guest's shell. */
    public void type(String line) throws IOException {
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            channel.connect(UnixDomainSocketAddress.of(socket));
            ByteBuffer bytes = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
        }
    }

    /**
     * Runs a test-guest query whose answer is framed by {@code PREFIX-BEGIN tag} / {@code PREFIX-END tag} lines and
     * returns the lines in between.
     */
    public List<String> query(String command, String prefix, String tag, Duration timeout)
            throws IOException, InterruptedException {
        type(command + " " + tag);
        String begin = prefix + "-BEGIN " + tag;
        String end = prefix + "-END " + tag;
        awaitLine(Pattern.compile("^" + Pattern.quote(end) + "\\s*$"), timeout);
        List<String> result = new ArrayList<>();
        boolean inside = false;
        for (String line : lines()) {
            String trimmed = line.strip();
            if (trimmed.equals(begin)) {
                inside = true;
                result.clear();
            } else if (trimmed.equals(end)) {
                return result;
            } else if (inside) {
                result.add(trimmed);
            }
        }
        throw new IOException("incomplete answer to '" + command + "' on the guest console");
    }

    private List<String> lines() throws IOException {
        if (!Files.exists(log)) {
            return List.of();
        }
        try (InputStream in = Files.newInputStream(log)) {
            byte[] bytes = in.readNBytes(MAX_LOG_BYTES);
            return new String(bytes, StandardCharsets.UTF_8).replace("\r", "").lines().toList();
        }
    }
}
