package io.veggur.bench;

import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import io.veggur.host.vm.VmSpec;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.memory.PhysicalMemory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
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

    private Path home;
    private VmManager manager;
    private IntrospectionSession session;
    private PhysicalMemory memory;
    private byte[] buffer;
    private long[] addresses;
    private int next;

    @Setup(Level.Trial)
    public void boot() throws Exception {
        home = Files.createTempDirectory("veggur-bench-");
        manager = new VmManager(new VeggurHome(home));
        VmInfo vm = manager.start(VmSpec.builtinGuest("bench"));
        new GuestConsole(manager.directory("bench")).awaitLine(Pattern.compile("VEGGUR-READY"), Duration.ofSeconds(120));
        session = IntrospectionSession.connect(vm.socket());
        memory = path.equals("fd") ? session.physicalMemory() : session.remotePhysicalMemory();
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
        session.close();
        manager.stop("bench");
        try (var paths = Files.walk(home)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
