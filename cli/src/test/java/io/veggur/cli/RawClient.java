package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Frame;
import io.veggur.protocol.Reply;
import io.veggur.protocol.Request;
import io.veggur.protocol.WireCodec;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/** A hand-made client of the introspection socket that can send anything, frame by frame. */
final class RawClient implements AutoCloseable {
    final AFUNIXSocket socket;
    final OutputStream out;
    final InputStream in;
    private int nextId = 1;

    RawClient(String path) throws IOException {
        socket = AFUNIXSocket.connectTo(AFUNIXSocketAddress.of(Path.of(path)));
        socket.setSoTimeout(30_000);
        out = socket.getOutputStream();
        in = socket.getInputStream();
    }

    /** Connected and past the handshake. */
    static RawClient connect(String path) throws IOException {
        RawClient client = new RawClient(path);
        client.send(client.nextId++, new Request.Hello(1, 1));
        assertThat(client.reply()).isInstanceOf(Reply.Welcome.class);
        return client;
    }

    void send(int id, Request request) throws IOException {
        ByteBuffer frame = WireCodec.encode(id, request);
        out.write(frame.array(), 0, frame.limit());
    }

    void frame(int id, int type, byte[] payload) throws IOException {
        ByteBuffer frame = Frame.allocate(id, type, payload.length).put(payload);
        out.write(frame.array(), 0, frame.limit());
    }

    Object reply() throws IOException {
        Frame frame = Frame.read(in);
        assertThat(frame).as("a reply before the server hangs up").isNotNull();
        return WireCodec.decodeServerMessage(frame);
    }

    ErrorCode errorCode() throws IOException {
        Object reply = reply();
        assertThat(reply).isInstanceOf(Reply.Error.class);
        return ((Reply.Error) reply).code();
    }

    /** Sends a request that must be refused; returns the error code. */
    ErrorCode call(Request request) throws IOException {
        send(nextId++, request);
        return errorCode();
    }

    /** Sends a frame of any type and payload that must be refused; returns the error code. */
    ErrorCode rawCall(int type, byte[] payload) throws IOException {
        frame(nextId++, type, payload);
        return errorCode();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
