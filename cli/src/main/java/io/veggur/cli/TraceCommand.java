package io.veggur.cli;

import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.os.linux.KernelDiscovery;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.os.linux.ProfileCache;
import io.veggur.vmi.os.linux.trace.LinuxTracer;
import io.veggur.vmi.os.linux.trace.SchedTracer;
import io.veggur.vmi.os.linux.trace.SyscallTracer;
import io.veggur.vmi.symbols.kallsyms.KallsymsFinder;
import java.io.IOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code veggur vmi trace syscalls|sched}: live tracing through breakpoints (trace role). */
@Command(name = "trace", description = "Trace the guest's system calls or context switches (trace role).",
        mixinStandardHelpOptions = true, subcommands = {TraceCommand.Syscalls.class, TraceCommand.Sched.class})
final class TraceCommand {
    /** A session with the kernel found, its symbols decoded and a tracer on it; closing ends the tracing. */
    record Traced(IntrospectionSession session, LinuxTracer tracer) implements AutoCloseable {
        static Traced open(Target target) throws Exception {
            IntrospectionSession session = target.connect();
            try {
                var memory = session.physicalMemory();
                LinuxKernel kernel = KernelDiscovery.discover(memory, ProfileCache.fromEnvironment());
                return new Traced(session, new LinuxTracer(session, kernel, KallsymsFinder.find(memory)));
            } catch (Exception e) {
                session.close();
                throw e;
            }
        }

        /** The page-table root of process {@code pid}, for tracing only it. */
        long pageTableRoot(int pid) throws IOException {
            for (LinuxTask task : tracer.kernel().processes().items()) {
                if (task.pid() == pid) {
                    if (task.pageTableRoot() == 0) {
                        throw new IllegalArgumentException("process " + pid + " is a kernel thread (no address space of its own)");
                    }
                    return task.pageTableRoot();
                }
            }
            throw new IllegalArgumentException("no process " + pid + " in the guest");
        }

        @Override
        public void close() {
            session.close();
        }
    }

    /** Shared limits: how many events, for how long at most. */
    static final class Limits {
        @Option(names = "--count", defaultValue = "100", description = "Stop after this many events (default 100).") int count;
        @Option(names = "--seconds", defaultValue = "30", description = "Stop after this long at the latest (default 30).") int seconds;

        void check() {
            if (count < 1 || seconds < 1) {
                throw new IllegalArgumentException("--count and --seconds must be positive");
            }
        }

        /** Waits for {@code count} events or the time limit; says so on stderr. */
        void await(CountDownLatch events, AtomicInteger seen) throws InterruptedException {
            System.err.println("veggur: tracing");
            System.err.flush();
            boolean all = events.await(seconds, TimeUnit.SECONDS);
            System.err.println("veggur: " + seen.get() + " events" + (all ? "" : " (stopped after " + seconds + " s)"));
        }
    }

    @Command(name = "syscalls", description = "Print system calls with decoded arguments (execve path and argv, "
            + "openat path, clone flags, exit status).")
    static final class Syscalls implements Callable<Integer> {
        @Mixin Target target;
        @Mixin Limits limits;
        @Option(names = "--filter", split = ",", paramLabel = "NAME,...",
                description = "System calls to trace (default: execve, execveat, clone, clone3, fork, vfork, openat, exit_group).")
        List<String> filter;
        @Option(names = "--pid", description = "Only this process.") Integer pid;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            limits.check();
            List<String> names = filter == null ? SyscallTracer.DEFAULT_CALLS : filter;
            for (String name : names) {
                if (!name.matches("[a-z0-9_]{1,64}")) {
                    throw new IllegalArgumentException("invalid system call name '" + name + "'");
                }
            }
            CountDownLatch events = new CountDownLatch(limits.count);
            AtomicInteger seen = new AtomicInteger();
            try (Traced traced = Traced.open(target)) {
                long root = pid == null ? 0 : traced.pageTableRoot(pid);
                List<String> missing = SyscallTracer.trace(traced.tracer(), names, root, call -> {
                    if (seen.incrementAndGet() <= limits.count) {
                        print(call);
                        events.countDown();
                    }
                });
                if (missing.size() == names.size()) {
                    throw new IllegalArgumentException("this kernel has none of the system calls " + names);
                }
                if (!missing.isEmpty()) {
                    System.err.println("veggur: warning: this kernel has no system call " + String.join(", ", missing));
                }
                limits.await(events, seen);
            }
            return 0;
        }

        private void print(SyscallTracer.Call call) {
            if (json) {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("vcpu", call.vcpu());
                row.put("pid", call.pid());
                row.put("tid", call.tid());
                row.put("comm", call.comm());
                row.put("syscall", call.name());
                row.putAll(call.decoded());
                row.put("args", Arrays.stream(call.args()).mapToObj(a -> "0x" + Long.toHexString(a)).toList());
                System.out.println(Json.MAPPER.valueToTree(row).toString());
            } else {
                System.out.printf("%6d %-16s %s%s%n", call.pid(), call.comm(), call.name(),
                        call.decoded().isEmpty() ? "(" + hex(call.args()) + ")" : " " + call.decoded());
            }
            System.out.flush();
        }

        private static String hex(long[] args) {
            return String.join(", ", Arrays.stream(args).limit(3).mapToObj(a -> "0x" + Long.toHexString(a)).toList());
        }
    }

    @Command(name = "sched", description = "Print context switches between address spaces (the CR3 loads of task "
            + "switches; see docs/architecture.md for what this sees and misses).")
    static final class Sched implements Callable<Integer> {
        @Mixin Target target;
        @Mixin Limits limits;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            limits.check();
            CountDownLatch events = new CountDownLatch(limits.count);
            AtomicInteger seen = new AtomicInteger();
            try (Traced traced = Traced.open(target)) {
                SchedTracer.trace(traced.tracer(), change -> {
                    if (seen.incrementAndGet() > limits.count) {
                        return;
                    }
                    if (json) {
                        System.out.println(Json.MAPPER.valueToTree(change).toString());
                    } else {
                        System.out.printf("vcpu %d: %d %s -> %d %s%n", change.vcpu(), change.prevPid(), change.prevComm(),
                                change.nextPid(), change.nextComm());
                    }
                    System.out.flush();
                    events.countDown();
                });
                limits.await(events, seen);
            }
            return 0;
        }
    }
}
