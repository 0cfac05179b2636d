package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.protocol.MemoryMap;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.memory.MappedPhysicalMemory;
import io.veggur.vmi.os.linux.KernelDiscovery;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.paging.PageTableWalker;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Raw memory images as a source: an image of a paused guest lists exactly what the live guest lists at that moment;
 * memory that holds no kernel, and a kernel whose task list was made cyclic, get clear answers instead of hangs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LinuxImageIT {
    private TestVm vm;
    private Path cache;
    private Path image;
    private JsonNode livePs;
    private JsonNode liveLsmod;

    @BeforeAll
    void imageAPausedGuest() throws Exception {
        vm = TestVm.boot("image-it", spec -> spec);
        cache = Files.createDirectories(vm.home.resolve("cache"));
        image = vm.home.resolve("memory.raw");
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            session.pause();
            Cli.Result dump = Cli.run(vm.home, "vmi", "read", "--socket", vm.socket(), "--physical", "0", "--length", "256M",
                    "--out", image.toString());
            assertThat(dump.exitCode()).as(dump.stderr()).isZero();
            livePs = Cli.json(vm.home, cache, "vmi", "ps", "--socket", vm.socket(), "--json");
            liveLsmod = Cli.json(vm.home, cache, "vmi", "lsmod", "--socket", vm.socket(), "--json");
            session.resume();
        }
    }

    @AfterAll
    void stop() throws Exception {
        if (vm != null) {
            vm.close();
        }
    }

    @Test
    void image_ofAPausedGuest_listsWhatTheLiveGuestListed() throws Exception {
        Path freshCache = Files.createDirectories(vm.home.resolve("fresh-cache"));
        assertThat(Cli.json(vm.home, freshCache, "vmi", "ps", "--image", image.toString(), "--json")).isEqualTo(livePs);
        assertThat(Cli.json(vm.home, freshCache, "vmi", "lsmod", "--image", image.toString(), "--json")).isEqualTo(liveLsmod);
        JsonNode kernel = Cli.json(vm.home, freshCache, "vmi", "kernel", "--image", image.toString(), "--json");
        assertThat(kernel.get("profileFromCache").asBoolean()).isTrue();
        assertThat(kernel.get("banner").asText()).startsWith("Linux version ");

        Cli.Result tree = Cli.run(vm.home, Map.of("VEGGUR_CACHE", freshCache.toString()), "vmi", "pstree", "--image", image.toString());
        assertThat(tree.exitCode()).as(tree.stderr()).isZero();
        assertThat(tree.stdout().lines()).contains("init (1)", "kthreadd (2)")
                .anyMatch(line -> line.matches("  veggur-idle-a \\(\\d+\\)"))
                .hasSize(livePs.size());
    }

    /**
     * The ISF fallback. No dwarf2json output can be produced on these machines (no debug packages or Go tool), so
     * the test writes an ISF of this kernel in Volatility 3's format from what full discovery found, with its
     * symbols at link-time addresses and task_struct's ids inside an anonymous struct as randomized layouts have.
     */
    @Test
    void isfSymbols_withoutBtfOrCache_listWhatTheLiveGuestListed() throws Exception {
        Path isf = vm.home.resolve("kernel.isf.json.gz");
        try (MappedPhysicalMemory memory = MappedPhysicalMemory.of(image, MemoryMap.flat(Files.size(image)))) {
            IsfFixture.write(KernelDiscovery.discover(memory, null), isf);
        }
        Path freshCache = Files.createDirectories(vm.home.resolve("isf-cache"));
        assertThat(Cli.json(vm.home, freshCache, "vmi", "ps", "--image", image.toString(), "--symbols", isf.toString(),
                "--json")).isEqualTo(livePs);
        JsonNode kernel = Cli.json(vm.home, freshCache, "vmi", "kernel", "--image", image.toString(), "--json");
        assertThat(kernel.get("profileFromCache").asBoolean()).as("the ISF-derived profile was cached").isTrue();
    }

    @Test
    void memoryWithoutAKernel_saysNoLinuxKernelFound() throws Exception {
        Path zeros = vm.home.resolve("zeros.raw");
        try (RandomAccessFile file = new RandomAccessFile(zeros.toFile(), "rw")) {
            file.setLength(64L << 20);
        }
        Path noise = vm.home.resolve("noise.raw");
        byte[] bytes = new byte[32 << 20];
        new Random(7).nextBytes(bytes);
        Files.write(noise, bytes);
        for (Path notLinux : List.of(zeros, noise)) {
            Cli.Result result = Cli.run(vm.home, Map.of("VEGGUR_CACHE", cache.toString()), "vmi", "ps", "--image", notLinux.toString());
            assertThat(result.exitCode()).isNotZero();
            assertThat(result.stderr()).startsWith("veggur: error: ").contains("no Linux kernel found").doesNotContain("\tat ");
        }
    }

    @Test
    void cyclicTaskList_endsWithAWarningNotAHang() throws Exception {
        Path corrupt = vm.home.resolve("corrupt.raw");
        Files.copy(image, corrupt);
        long nodePhysical;
        long target;
        try (MappedPhysicalMemory memory = MappedPhysicalMemory.of(image, MemoryMap.flat(Files.size(image)))) {
            LinuxKernel kernel = KernelDiscovery.discover(memory, null);
            List<LinuxTask> tasks = kernel.processes().items();
            int tasksOffset = kernel.profile().task().tasks();
            PageTableWalker walker = new PageTableWalker(memory, kernel.pagingMode());
            nodePhysical = walker.translate(kernel.kernelMemory().root(), tasks.get(20).address() + tasksOffset);
            target = tasks.get(5).address() + tasksOffset;
        }
        try (RandomAccessFile file = new RandomAccessFile(corrupt.toFile(), "rw")) {
            file.seek(nodePhysical);
            file.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(target).array());
        }
        Cli.Result result = Cli.run(vm.home, Map.of("VEGGUR_CACHE", cache.toString()), "vmi", "ps", "--image", corrupt.toString(), "--json");
        assertThat(result.exitCode()).as(result.stderr()).isZero();
        assertThat(result.stderr()).contains("warning").contains("cycle");
        assertThat(Json.MAPPER.readTree(result.stdout())).hasSize(21);
    }
}
