package io.veggur.vmi;

import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.Reply;
import io.veggur.protocol.Request;
import io.veggur.protocol.Request.PhysicalRange;
import io.veggur.protocol.WireCodec;
import io.veggur.vmi.memory.OutOfRangeException;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Guest-physical reads over the socket. Large reads and big batches are cut into requests within the protocol's
 * limits and pipelined, so any read costs about one round trip plus transfer time.
 */
final class RemotePhysicalMemory implements PhysicalMemory {
    private final ProtocolClient client;
    private final MemoryMap memoryMap;

    RemotePhysicalMemory(ProtocolClient client, MemoryMap memoryMap) {
        this.client = client;
        this.memoryMap = memoryMap;
    }

    @Override
    public MemoryMap memoryMap() {
        return memoryMap;
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) throws IOException {
        readBatch(List.of(new PhysicalRange(address, length)), dst, offset);
    }

    @Override
    public void readBatch(List<PhysicalRange> ranges, byte[] dst) throws IOException {
        readBatch(ranges, dst, 0);
    }

    private void readBatch(List<PhysicalRange> ranges, byte[] dst, int dstOffset) throws IOException {
        List<CompletableFuture<ProtocolClient.Answer>> inFlight = new ArrayList<>();
        List<PhysicalRange> request = new ArrayList<>();
        long requestBytes = 0;
        for (PhysicalRange range : ranges) {
            if (memoryMap.regionOf(range.address(), range.length()) == null) {
                throw new OutOfRangeException(range.address(), range.length());
            }
            for (long done = 0; done < range.length(); ) {
                if (requestBytes == WireCodec.MAX_READ_BYTES || request.size() == WireCodec.MAX_READ_RANGES) {
                    inFlight.add(client.send(new Request.ReadPhysical(request)));
                    request = new ArrayList<>();
                    requestBytes = 0;
                }
                int piece = (int) Math.min(range.length() - done, WireCodec.MAX_READ_BYTES - requestBytes);
                request.add(new PhysicalRange(range.address() + done, piece));
                requestBytes += piece;
                done += piece;
            }
        }
        if (!request.isEmpty()) {
            inFlight.add(client.send(new Request.ReadPhysical(request)));
        }
        int position = dstOffset;
        for (CompletableFuture<ProtocolClient.Answer> future : inFlight) {
            byte[] bytes = ((Reply.Data) client.await(future).reply()).bytes();
            System.arraycopy(bytes, 0, dst, position, bytes.length);
            position += bytes.length;
        }
    }

    @Override
    public void close() {
        // the session owns the connection
    }
}
