package io.veggur.cli;

import io.veggur.vmi.os.linux.DiscoveryReport;
import io.veggur.vmi.os.linux.KernelDiscovery;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxModule;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.os.linux.Listing;
import io.veggur.vmi.os.linux.ProfileCache;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The Linux views of a guest: {@code vmi ps|pstree|lsmod|kernel}, with no profile given. */
final class LinuxCommand {
    private LinuxCommand() {}

    /** Shared by the Linux commands: where memory comes from and whether to use the profile cache. */
    static final class Discovery {
        @Mixin Target target;
        @Option(names = "--no-profile-cache", description = "Discover everything from guest memory, ignoring cached profiles.")
        boolean noCache;
        @Option(names = "--symbols", paramLabel = "FILE",
                description = "Volatility 3 ISF file (.json, .json.gz, .json.xz) for kernels without BTF.")
        Path symbols;

        <T> T run(KernelAction<T> action) throws Exception {
            if (symbols != null && !Files.isReadable(symbols)) {
                throw new NoSuchFileException(symbols.toString(), null, "no symbols file here");
            }
            try (Target.Source source = target.open()) {
                ProfileCache cache = noCache ? null : ProfileCache.fromEnvironment();
                LinuxKernel kernel = symbols == null
                        ? KernelDiscovery.discover(source.memory(), cache)
                        : KernelDiscovery.discover(source.memory(), cache, symbols);
                return action.apply(kernel);
            }
        }
    }

    interface KernelAction<T> {
        T apply(LinuxKernel kernel) throws Exception;
    }

    static <T> List<T> itemsWarning(Listing<T> listing, String what) {
        if (!listing.complete()) {
            System.err.println("veggur: warning: the " + what + " walk stopped early: " + listing.problem());
        }
        return listing.items();
    }

    @Command(name = "ps", description = "List the guest's processes (or threads) from kernel memory.")
    static final class Ps implements Callable<Integer> {
        @Mixin Discovery discovery;
        @Option(names = "--threads", description = "List every thread, not only processes.") boolean threads;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            List<LinuxTask> tasks = discovery.run(kernel ->
                    itemsWarning(threads ? kernel.threads() : kernel.processes(), "task list"));
            if (json) {
                List<Map<String, Object>> rows = new ArrayList<>();
                for (LinuxTask task : tasks) {
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("pid", task.pid());
                    row.put("tgid", task.tgid());
                    row.put("ppid", task.ppid());
                    row.put("uid", task.uid());
                    row.put("name", task.name());
                    row.put("state", String.valueOf(task.state()));
                    row.put("kernelThread", task.kernelThread());
                    row.put("pageTableRoot", task.pageTableRoot());
                    rows.add(row);
                }
                System.out.println(Json.write(rows));
                return 0;
            }
            System.out.printf("%7s %7s %7s %6s S  %s%n", "PID", "TGID", "PPID", "UID", "NAME");
            for (LinuxTask task : tasks) {
                System.out.printf("%7d %7d %7d %6d %c  %s%n", task.pid(), task.tgid(), task.ppid(), task.uid(), task.state(),
                        task.kernelThread() ? "[" + task.name() + "]" : task.name());
            }
            return 0;
        }
    }

    @Command(name = "pstree", description = "Show the guest's processes as a tree.")
    static final class PsTree implements Callable<Integer> {
        @Mixin Discovery discovery;

        @Override
        public Integer call() throws Exception {
            List<LinuxTask> tasks = discovery.run(kernel -> itemsWarning(kernel.processes(), "task list"));
            Map<Integer, List<LinuxTask>> children = new TreeMap<>();
            for (LinuxTask task : tasks) {
                children.computeIfAbsent(task.ppid(), k -> new ArrayList<>()).add(task);
            }
            children.values().forEach(list -> list.sort(Comparator.comparingInt(LinuxTask::pid)));
            print(children, 0, "", new HashSet<>());
            return 0;
        }

        /** Depth-first from pid 0's children; the visited set guards against a parent cycle in corrupt memory. */
        private static void print(Map<Integer, List<LinuxTask>> children, int pid, String indent, Set<Integer> visited) {
            for (LinuxTask child : children.getOrDefault(pid, List.of())) {
                if (!visited.add(child.pid())) {
                    continue;
                }
                System.out.println(indent + child.name() + " (" + child.pid() + ")");
                print(children, child.pid(), indent + "  ", visited);
            }
        }
    }

    @Command(name = "lsmod", description = "List the guest's loaded kernel modules.")
    static final class Lsmod implements Callable<Integer> {
        @Mixin Discovery discovery;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            List<LinuxModule> modules = discovery.run(kernel -> itemsWarning(kernel.modules(), "module list"));
            if (json) {
                List<Map<String, Object>> rows = new ArrayList<>();
                for (LinuxModule module : modules) {
                    rows.add(Map.of("name", module.name(), "size", module.size(), "base", module.base()));
                }
                System.out.println(Json.write(rows));
                return 0;
            }
            System.out.printf("%-32s %10s  %s%n", "Module", "Size", "Base");
            for (LinuxModule module : modules) {
                System.out.printf("%-32s %10d  0x%x%n", module.name(), module.size(), module.base());
            }
            return 0;
        }
    }

    @Command(name = "kernel", description = "Show what was discovered about the guest kernel, step by step and timed.")
    static final class Kernel implements Callable<Integer> {
        @Mixin Discovery discovery;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            return discovery.run(kernel -> {
                DiscoveryReport report = kernel.report();
                if (json) {
                    Map<String, Object> out = new LinkedHashMap<>();
                    out.put("banner", kernel.banner());
                    out.put("release", kernel.release());
                    out.put("buildId", kernel.profile().buildId());
                    out.put("kaslrSlide", kernel.kaslrSlide());
                    out.put("textAddress", kernel.textAddress());
                    out.put("textPhysical", kernel.textPhysical());
                    out.put("pagingMode", kernel.pagingMode().name());
                    out.put("profileFromCache", report.profileFromCache());
                    out.put("steps", report.steps());
                    System.out.println(Json.write(out));
                    return 0;
                }
                System.out.println(kernel.banner());
                System.out.printf("release        %s%n", kernel.release());
                System.out.printf("build id       %s%n", kernel.profile().buildId());
                System.out.printf("_text          0x%x (KASLR slide 0x%x)%n", kernel.textAddress(), kernel.kaslrSlide());
                System.out.printf("image physical 0x%x%n", kernel.textPhysical());
                System.out.printf("paging         %s%n", kernel.pagingMode());
                System.out.println("discovery steps:");
                for (DiscoveryReport.Step step : report.steps()) {
                    System.out.printf("  %-14s %8.2f ms  %s%n", step.name(), step.nanos() / 1e6, step.result());
                }
                return 0;
            });
        }
    }

    @Command(name = "bench", description = "Time the paper's passive benchmark: list the processes COUNT times, every "
            + "cache flushed before each list; prints microseconds per list.")
    static final class Bench implements Callable<Integer> {
        @Mixin Discovery discovery;
        @Option(names = "--count", defaultValue = "5000") int count;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            if (count < 1 || count > 10_000_000) {
                throw new IllegalArgumentException("--count must be 1..10000000");
            }
            long[] nanos = discovery.run(kernel -> {
                int processes = kernel.processes().items().size();
                for (int i = 0; i < Math.max(100, count / 10); i++) {
                    kernel.invalidateCaches();
                    kernel.processes();
                }
                long[] each = new long[count + 1];
                for (int i = 0; i < count; i++) {
                    long start = System.nanoTime();
                    kernel.invalidateCaches();
                    kernel.processes();
                    each[i] = System.nanoTime() - start;
                }
                each[count] = processes;
                return each;
            });
            int processes = (int) nanos[count];
            long[] sorted = Arrays.copyOf(nanos, count);
            Arrays.sort(sorted);
            double mean = Arrays.stream(sorted).average().orElse(0) / 1000.0;
            double median = sorted[count / 2] / 1000.0;
            double p90 = sorted[(int) Math.min(count - 1, count * 9L / 10)] / 1000.0;
            if (json) {
                System.out.println(Json.write(Map.of("lists", count, "processes", processes, "meanMicros", mean,
                        "medianMicros", median, "p90Micros", p90)));
            } else {
                System.out.printf("%d process lists (%d processes each, caches flushed): mean %.1f us, median %.1f us, p90 %.1f us%n",
                        count, processes, mean, median, p90);
            }
            return 0;
        }
    }
}
