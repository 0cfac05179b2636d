package io.veggur.vmi.transport;

import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.SocketException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/** A local UNIX-domain socket; the only transport that can receive the zero-copy memory descriptor. */
public record UnixSocketTransport(Path path) implements Transport {
    /** Room for a few descriptors per read; the server sends at most one per reply. */
    private static final int ANCILLARY_BUFFER_BYTES = 256;

    @Override
    public Connection open() throws IOException {
        if (!Files.exists(path)) {
            Path directory = path.toAbsolutePath().getParent();
            if (directory != null && Files.isDirectory(directory) && !Files.isExecutable(directory)) {
                throw new AccessDeniedException(path.toString(), null, "no permission to enter its directory");
            }
            throw new NoSuchFileException(path.toString(), null, "no introspection socket here");
        }
        AFUNIXSocket socket = AFUNIXSocket.newInstance();
        try {
            socket.connect(AFUNIXSocketAddress.of(path));
            socket.setAncillaryReceiveBufferSize(ANCILLARY_BUFFER_BYTES);
        } catch (SocketException e) {
            socket.close();
            throw new SocketException("cannot connect to " + path + ": " + e.getMessage());
        }
        return new Connection() {
            @Override
            public InputStream input() throws IOException {
                return socket.getInputStream();
            }

            @Override
            public OutputStream output() throws IOException {
                return socket.getOutputStream();
            }

            @Override
            public boolean canReceiveFileDescriptors() {
                return true;
            }

            @Override
            public FileDescriptor[] takeReceivedFileDescriptors() throws IOException {
                FileDescriptor[] fds = socket.getReceivedFileDescriptors();
                return fds == null ? new FileDescriptor[0] : fds;
            }

            @Override
            public void close() throws IOException {
                socket.close();
            }
        };
    }

    @Override
    public String describe() {
        return "unix:" + path;
    }
}
