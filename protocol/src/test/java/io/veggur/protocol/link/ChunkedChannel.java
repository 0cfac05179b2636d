package io.veggur.protocol.link;

import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.Random;

/** Serves fixed bytes in chunks of random sizes (1..maxChunk), as a port or socket may deliver them. */
final class ChunkedChannel implements ReadableByteChannel {
    private final ByteBuffer bytes;
    private final Random random;
    private final int maxChunk;
    private boolean open = true;

    ChunkedChannel(byte[] bytes, Random random, int maxChunk) {
        this.bytes = ByteBuffer.wrap(bytes);
        this.random = random;
        this.maxChunk = maxChunk;
    }

    @Override
    public int read(ByteBuffer dst) {
        if (!bytes.hasRemaining()) {
            return -1;
        }
        int n = Math.min(Math.min(dst.remaining(), bytes.remaining()), 1 + random.nextInt(maxChunk));
        dst.put(bytes.slice(bytes.position(), n));
        bytes.position(bytes.position() + n);
        return n;
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    @Override
    public void close() {
        open = false;
    }
}
