package io.veggur.bench;

import io.veggur.vmi.memory.PhysicalMemory;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Random guest-physical reads from a live test guest, through the granted descriptor (a memory copy) and through the
 * socket (one round trip per read). Addresses are page-aligned and uniformly spread over the first 192 MiB of RAM.
 * Throughput in bytes/s = ops/s x size.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class PhysicalReadBenchmark {
    private static final long SPAN = 192L << 20;

    @Param({"8", "4096", "65536"})
    public int size;

    @Param({"fd", "socket"})
    public String path;

    private BenchGuest guest;
    private PhysicalMemory memory;
    private byte[] buffer;
    private long[] addresses;
    private int next;

    @Setup(Level.Trial)
    public void boot() throws Exception {
        guest = new BenchGuest();
        memory = path.equals("fd") ? guest.session.physicalMemory() : guest.session.remotePhysicalMemory();
        buffer = new byte[size];
        SplittableRandom random = new SplittableRandom(42);
        addresses = new long[1 << 16];
        for (int i = 0; i < addresses.length; i++) {
            addresses[i] = random.nextLong((SPAN - size) >> 12) << 12;
        }
    }

    @Benchmark
    public byte[] read() throws Exception {
        memory.read(addresses[next++ & (addresses.length - 1)], buffer, 0, size);
        return buffer;
    }

    @TearDown(Level.Trial)
    public void stop() throws Exception {
        guest.close();
    }
}
