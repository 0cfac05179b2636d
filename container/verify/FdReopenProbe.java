package io.veggur.vmi;

import io.veggur.protocol.Request;
import io.veggur.protocol.WireCodec;
import java.io.RandomAccessFile;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Isolation probe (container/verify.sh), a hand-made client as a tenant could run it: asks the socket for the
 * read-only memory descriptor, keeps it open, and tries to reopen it through /proc/self/fd for writing. It never
 * writes: opening read-write is the finding. Prints "reopen-rw: DENIED ..." or "reopen-rw: ALLOWED ...".
 * Lives in io.veggur.vmi only to reach the package-private ProtocolClient.
 */
public final class FdReopenProbe {
    public static void main(String[] args) throws Exception {
        var connection = io.veggur.vmi.transport.Transport.parse("unix:" + args[0]).open();
        try (var client = new ProtocolClient(connection, Duration.ofSeconds(10))) {
            client.call(new Request.Hello(WireCodec.VERSION, WireCodec.VERSION));
            var answer = client.call(new Request.GrantMemoryFd());
            if (answer.fd() == null) {
                System.out.println("no descriptor granted");
                return;
            }
            try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
                for (Path fd : fds) {
                    Path target;
                    try {
                        target = Files.readSymbolicLink(fd);
                    } catch (Exception e) {
                        continue;
                    }
                    if (!target.toString().endsWith("/ram")) {
                        continue;
                    }
                    System.out.println("granted fd " + fd.getFileName() + " -> " + target);
                    try (RandomAccessFile rw = new RandomAccessFile(fd.toString(), "rw")) {
                        System.out.println("reopen-rw: ALLOWED (the read-only grant became writable)");
                    } catch (Exception e) {
                        System.out.println("reopen-rw: DENIED (" + e.getMessage() + ")");
                    }
                }
            }
        }
    }
}
