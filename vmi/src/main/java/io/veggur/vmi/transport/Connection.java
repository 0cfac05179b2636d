package io.veggur.vmi.transport;

import java.io.Closeable;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/** A byte stream to an introspection server, as opened by a {@link Transport}. */
public interface Connection extends Closeable {
    InputStream input() throws IOException;

    OutputStream output() throws IOException;

    /** Whether descriptors can arrive with data (only local UNIX sockets can carry SCM_RIGHTS). */
    default boolean canReceiveFileDescriptors() {
        return false;
    }

    /**
     * Descriptors that arrived since the last call, in arrival order; empty when none. Only meaningful right after a
     * read on {@link #input()}.
     */
    default FileDescriptor[] takeReceivedFileDescriptors() throws IOException {
        return new FileDescriptor[0];
    }
}
