package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.host.vm.VmSpec;
import io.veggur.protocol.Register;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.os.linux.KernelDiscovery;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.os.linux.Listing;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Profile-free Linux introspection against the guest's own /proc, across a matrix of guests: KASLR on and off, 5-
 * and 4-level paging, 1 and 2 vCPUs, 256 MiB and RAM above 4 GiB, and three Debian kernel generations (bullseye's
 * 5.10, bookworm's 6.1, trixie's 6.12). Each value of each dimension appears with both kernels of the main pair.
 */
class LinuxIT {
    private static final Duration QUERY_TIMEOUT = Duration.ofSeconds(60);

    record Config(String name, String suite, boolean kaslr, String cpu, int vcpus, long memory) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Config> guests() {
        return Stream.of(
                new Config("bookworm-kaslr-la57-1cpu-256M", null, true, "max", 1, 256L << 20),
                new Config("bookworm-nokaslr-4level-2cpu-5G", null, false, "qemu64", 2, 5L << 30),
                new Config("trixie-kaslr-la57-2cpu-256M", "trixie", true, "max", 2, 256L << 20),
                new Config("trixie-nokaslr-4level-1cpu-5G", "trixie", false, "qemu64", 1, 5L << 30),
                // bullseye's cloud kernel is built without CONFIG_X86_5LEVEL: 4-level paging even on -cpu max.
                new Config("bullseye-kaslr-cpumax-1cpu-256M", "bullseye", true, "max", 1, 256L << 20));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("guests")
    void processesAndModules_equalTheGuestsOwnProc(Config config) throws Exception {
        try (TestVm vm = TestVm.boot("linux-it", spec -> spec(config, spec))) {
            Path cache = Files.createDirectories(vm.home.resolve("cache"));
            String release = vm.console.awaitLine(Pattern.compile("VEGGUR-READY kernel=(\\S+)"), TestVm.BOOT_TIMEOUT).group(1);

            JsonNode kernel = Cli.json(vm.home, cache, "vmi", "kernel", "--socket", vm.socket(), "--json");
            assertThat(kernel.get("release").asText()).isEqualTo(release);
            boolean la57 = la57(vm);
            assertThat(la57).as("the matrix's la57 guests really run with 5-level paging").isEqualTo(config.name().contains("la57"));
            assertThat(kernel.get("pagingMode").asText()).as("paging mode, as the vCPU's CR4.LA57 says")
                    .isEqualTo(la57 ? "FIVE_LEVEL" : "FOUR_LEVEL");
            if (!config.kaslr()) {
                assertThat(kernel.get("kaslrSlide").asLong()).as("nokaslr").isZero();
            }
            assertThat(kernel.get("profileFromCache").asBoolean()).isFalse();

            GuestProcesses.assertListingMatches(vm.console,
                    () -> Cli.json(vm.home, cache, "vmi", "ps", "--socket", vm.socket(), "--json"));
            assertThreadsMatch(vm);
            assertModulesMatch(vm, cache);
            assertThat(Cli.json(vm.home, cache, "vmi", "kernel", "--socket", vm.socket(), "--json").get("profileFromCache").asBoolean())
                    .as("the second run uses the cached profile").isTrue();
        }
    }

    private static boolean la57(TestVm vm) throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            return (session.registers(0).get(Register.CR4) & (1L << 12)) != 0;
        }
    }

    private static VmSpec spec(Config config, VmSpec spec) {
        VmSpec configured = spec.withCpuModel(config.cpu()).withVcpus(config.vcpus()).withMemory(config.memory());
        String append = config.kaslr() ? null : "nokaslr";
        if (config.suite() == null) {
            return configured.withAppend(append);
        }
        GuestKernels.Kernel kernel = GuestKernels.build(config.suite());
        return configured.withKernel(kernel.vmlinuz(), kernel.initrd(),
                "console=ttyS0 panic=-1 quiet" + (append == null ? "" : " " + append));
    }

    private void assertThreadsMatch(TestVm vm) throws Exception {
        List<String> truth = vm.console.query("veggur-truth ps", "VEGGUR-PS", "threads", QUERY_TIMEOUT);
        int threadsProcess = -1;
        int extraThreads = 0;
        for (String line : truth) {
            String[] fields = line.split(" ", 6);
            if (fields[0].equals("VEGGUR-PS") && fields[5].equals("veggur-threads")) {
                threadsProcess = Integer.parseInt(fields[1]);
            }
        }
        for (String line : truth) {
            String[] fields = line.split(" ", 4);
            if (fields[0].equals("VEGGUR-THREAD") && Integer.parseInt(fields[2]) == threadsProcess) {
                extraThreads++;
            }
        }
        assertThat(extraThreads).isEqualTo(3);
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            LinuxKernel kernel = KernelDiscovery.discover(session.physicalMemory(), null);
            Listing<LinuxTask> threads = kernel.threads();
            assertThat(threads.complete()).as(String.valueOf(threads.problem())).isTrue();
            int pid = threadsProcess;
            assertThat(threads.items().stream().filter(t -> t.tgid() == pid).toList())
                    .hasSize(4).allMatch(t -> t.name().equals("veggur-threads"));
        }
    }

    private static void assertModulesMatch(TestVm vm, Path cache) throws Exception {
        Map<String, Long> truth = new HashMap<>();
        for (String line : vm.console.query("veggur-truth modules", "VEGGUR-MOD", "lsmod", QUERY_TIMEOUT)) {
            String[] fields = line.split(" ");
            truth.put(fields[1], Long.parseLong(fields[2]));
        }
        Map<String, Long> listed = new HashMap<>();
        for (JsonNode module : Cli.json(vm.home, cache, "vmi", "lsmod", "--socket", vm.socket(), "--json")) {
            listed.put(module.get("name").asText(), module.get("size").asLong());
        }
        assertThat(listed).isEqualTo(truth);
    }
}
