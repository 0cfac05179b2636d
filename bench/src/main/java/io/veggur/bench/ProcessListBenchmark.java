package io.veggur.bench;

import io.veggur.protocol.MemoryMap;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.memory.MappedPhysicalMemory;
import io.veggur.vmi.memory.PhysicalMemory;
import io.veggur.vmi.os.linux.KernelDiscovery;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.os.linux.Listing;
import java.nio.file.Files;
import java.nio.file.Path;
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
 * The paper's passive benchmark: extract the full process list, every cache flushed before each list. {@code fd}
 * reads a live test guest through the granted descriptor; {@code image} reads a raw image of the same guest taken
 * while it was paused. Reported as microseconds per list.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class ProcessListBenchmark {
    @Param({"fd", "image"})
    public String source;

    private BenchGuest guest;
    private PhysicalMemory imageMemory;
    private LinuxKernel kernel;

    @Setup(Level.Trial)
    public void boot() throws Exception {
        guest = new BenchGuest();
        IntrospectionSession session = guest.session;
        PhysicalMemory memory = session.physicalMemory();
        if (source.equals("image")) {
            Path image = guest.home().resolve("memory.raw");
            session.pause();
            Files.write(image, memory.read(0, (int) memory.memoryMap().totalSize()));
            session.resume();
            memory = imageMemory = MappedPhysicalMemory.of(image, MemoryMap.flat(Files.size(image)));
        }
        kernel = KernelDiscovery.discover(memory, null);
        Listing<LinuxTask> first = kernel.processes();
        System.out.println("\n" + source + ": " + first.items().size() + " processes, complete=" + first.complete());
    }

    @Benchmark
    public Listing<LinuxTask> processList() throws Exception {
        kernel.invalidateCaches();
        return kernel.processes();
    }

    @TearDown(Level.Trial)
    public void stop() throws Exception {
        if (imageMemory != null) {
            imageMemory.close();
        }
        guest.close();
    }
}
