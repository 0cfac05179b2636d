package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.host.vm.SupervisorControl;
import io.veggur.host.vm.VmSpec;
import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Event;
import io.veggur.protocol.Register;
import io.veggur.protocol.Request;
import io.veggur.vmi.DebugHandler;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.VmiException;
import io.veggur.vmi.os.linux.KernelDiscovery;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.symbols.kallsyms.KallsymsFinder;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Breakpoints through the introspection socket against the guest's own account: the getpid workload says how many
 * calls it made and what the last one returned. The server, not the client, keeps the guest safe: a client that
 * never answers, dies while the guest waits on it, floods breakpoints or sends nonsense leaves the guest running with
 * no breakpoint behind (checked by the workload's own clock: 5000 calls with a breakpoint left would take seconds).
 */
class BreakpointIT {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static TestVm vm;
    private static long getpid;

    @BeforeAll
    static void boot() throws Exception {
        vm = TestVm.boot("bp-it", spec -> new VmSpec(spec.name(), spec.kernel(), spec.initrd(), spec.append(), spec.disk(),
                spec.memoryBytes(), spec.vcpus(), spec.cpuModel(), spec.accel(), true));
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            getpid = KallsymsFinder.find(session.physicalMemory()).address("__x64_sys_getpid").orElseThrow();
        }
    }

    @AfterAll
    static void stop() throws Exception {
        if (vm != null) {
            vm.close();
        }
    }

    @Test
    void getpidBreakpoint_forTheWorkloadsAddressSpace_seesExactlyItsCalls_andLeavesGuestMemoryAlone() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            var memory = session.physicalMemory();
            LinuxKernel kernel = KernelDiscovery.discover(memory, null);
            byte[] before = kernel.kernelMemory().read(getpid, 16);

            vm.console.type("veggur-getpid 1500 4000");
            int pid = Integer.parseInt(await("VEGGUR-GETPID-START pid=(\\d+) calls=1500\\b").group(1));
            long root = kernel.processes().items().stream().filter(t -> t.pid() == pid).findFirst()
                    .map(LinuxTask::pageTableRoot).orElseThrow();
            AtomicInteger hits = new AtomicInteger();
            session.onDebugEvents(event -> {
                hits.incrementAndGet();
                return DebugHandler.Resolution.proceed();
            });
            session.setBreakpoint(getpid, root);
            assertThat(kernel.kernelMemory().read(getpid, 16)).as("no int3 visible in guest memory").isEqualTo(before);

            Matcher done = await("VEGGUR-GETPID pid=(\\d+) calls=1500 ");
            assertThat(Integer.parseInt(done.group(1))).isEqualTo(pid);
            assertThat(hits.get()).isEqualTo(1500);
        }
    }

    @Test
    void setReturn_theGuestProgramSeesTheNewValue() throws Exception {
        Process tool = Cli.start(vm.home, "vmi", "break", "__x64_sys_getpid", "--vm", "bp-it", "--count", "3",
                "--seconds", "60", "--set-return", "4242");
        try {
            BufferedReader stderr = new BufferedReader(new InputStreamReader(tool.getErrorStream(), StandardCharsets.UTF_8));
            assertThat(stderr.readLine()).startsWith("veggur: breakpoint set at __x64_sys_getpid");
            vm.console.type("veggur-getpid 3");
            Matcher done = await("VEGGUR-GETPID pid=(\\d+) calls=3 ");
            assertThat(tool.waitFor(60, TimeUnit.SECONDS)).isTrue();
            String stdout = new String(tool.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(tool.exitValue()).isZero();
            assertThat(done.group(1)).as("what the guest got; the tool said:%n%s", stdout).isEqualTo("4242");
            assertThat(stdout).containsPattern("hit 3: pid \\d+ \\(veggur-getpid\\) returned \\d+, replaced by 4242");
        } finally {
            tool.destroyForcibly();
        }
        assertNoBreakpointLeft(5001);
    }

    @Test
    void traceSyscalls_showsAnExecveWithThePathAndArgvTheGuestRan() throws Exception {
        Process tool = Cli.start(vm.home, "vmi", "trace", "syscalls", "--vm", "bp-it", "--filter", "execve",
                "--count", "1", "--seconds", "60", "--json");
        try {
            awaitTracing(tool);
            vm.console.type("/bin/busybox echo veggur-exec-42 two");
            await("^veggur-exec-42 two");
            assertThat(tool.waitFor(60, TimeUnit.SECONDS)).isTrue();
            var call = Json.MAPPER.readTree(tool.getInputStream().readAllBytes());
            assertThat(call.path("syscall").asText()).isEqualTo("execve");
            assertThat(call.path("path").asText()).isEqualTo("/bin/busybox");
            assertThat(Json.MAPPER.convertValue(call.path("argv"), List.class))
                    .containsExactly("/bin/busybox", "echo", "veggur-exec-42", "two");
            assertThat(call.path("comm").asText()).isEqualTo("sh");
        } finally {
            tool.destroyForcibly();
        }
        assertNoBreakpointLeft(5006);
    }

    @Test
    void traceSched_namesTheTaskThatRan() throws Exception {
        vm.console.type("veggur-getpid 3000000 4000");
        int pid = Integer.parseInt(await("VEGGUR-GETPID-START pid=(\\d+) calls=3000000\\b").group(1));
        // Everything for 12 s: the workload wakes up 4 s after its announcement and then runs for seconds.
        Process tool = Cli.start(vm.home, "vmi", "trace", "sched", "--vm", "bp-it", "--count", "1000000", "--seconds", "12",
                "--json");
        try {
            assertThat(tool.waitFor(90, TimeUnit.SECONDS)).isTrue();
            List<com.fasterxml.jackson.databind.JsonNode> switches = new ArrayList<>();
            new String(tool.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines()
                    .forEach(line -> switches.add(readJson(line)));
            assertThat(switches).hasSizeGreaterThan(10);
            assertThat(switches).anySatisfy(change -> {
                assertThat(change.path("nextPid").asInt()).isEqualTo(pid);
                assertThat(change.path("nextComm").asText()).isEqualTo("veggur-getpid");
            });
        } finally {
            tool.destroyForcibly();
        }
        await("VEGGUR-GETPID pid=\\d+ calls=3000000 ");
    }

    private static com.fasterxml.jackson.databind.JsonNode readJson(String line) {
        try {
            return Json.MAPPER.readTree(line);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + line, e);
        }
    }

    /** The tool says on stderr when its breakpoints are set. */
    private static void awaitTracing(Process tool) throws IOException {
        BufferedReader stderr = new BufferedReader(new InputStreamReader(tool.getErrorStream(), StandardCharsets.UTF_8));
        for (String line; (line = stderr.readLine()) != null; ) {
            if (line.equals("veggur: tracing")) {
                return;
            }
        }
        throw new AssertionError("the tool ended before tracing");
    }

    @Test
    void aBreakpointAtAPhysicalAddress_firesWhereTheKernelRunsThatCode() throws Exception {
        long physical;
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            physical = KallsymsFinder.find(session.physicalMemory()).imagePhysical(getpid);
        }
        Process tool = Cli.start(vm.home, "vmi", "break", "phys:0x" + Long.toHexString(physical), "--vm", "bp-it",
                "--count", "9", "--seconds", "60");
        try {
            BufferedReader stderr = new BufferedReader(new InputStreamReader(tool.getErrorStream(), StandardCharsets.UTF_8));
            assertThat(stderr.readLine()).contains("(0x" + Long.toHexString(getpid) + ")");
            vm.console.type("veggur-getpid 9");
            await("VEGGUR-GETPID pid=\\d+ calls=9 ");
            assertThat(tool.waitFor(60, TimeUnit.SECONDS)).isTrue();
            String stdout = new String(tool.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(stdout).contains("9 hits").contains("(veggur-getpid) rip 0x" + Long.toHexString(getpid));
        } finally {
            tool.destroyForcibly();
        }
    }

    @Test
    void singleStep_movesOnlyThePausedVcpu_oneInstructionAtATime_andResumeLetsTheGuestGoOn() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            assertRefused(() -> session.singleStep(0), ErrorCode.VM_UNAVAILABLE);
            session.pause();
            long rip = session.registers(0).get(Register.RIP);
            for (int i = 0; i < 5; i++) {
                var after = session.singleStep(0);
                assertThat(session.registers(0).values()).as("the VM stays paused between steps").isEqualTo(after.values());
                assertThat(after.get(Register.RIP)).as("step %d executed an instruction", i).isNotEqualTo(rip);
                rip = after.get(Register.RIP);
            }
            assertRefused(() -> session.singleStep(7), ErrorCode.OUT_OF_RANGE);
            session.resume();
        }
        assertNoBreakpointLeft(5007);
    }

    @Test
    void aClientThatNeverAnswers_isOverruledByTheDeadline() throws Exception {
        AtomicLong expired = new AtomicLong();
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            session.onDebugEvents(new DebugHandler() {
                @Override
                public Resolution onEvent(Event.Debug event) throws IOException {
                    try {
                        Thread.sleep(Long.MAX_VALUE);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return Resolution.proceed();
                }

                @Override
                public void expired(long eventId) {
                    expired.incrementAndGet();
                }
            });
            session.setBreakpoint(getpid, 0);
            vm.console.type("veggur-getpid 2");
            await("VEGGUR-GETPID pid=\\d+ calls=2 ");
            assertThat(expired.get()).isGreaterThanOrEqualTo(1);
        }
        assertNoBreakpointLeft(5002);
    }

    @Test
    void aClientKilledWhileTheGuestWaitsOnIt_leavesNoBreakpointAndAGuestThatRuns() throws Exception {
        Process stuck = new ProcessBuilder(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-cp", System.getProperty("java.class.path"), StuckClient.class.getName(), vm.socket(),
                Long.toHexString(getpid))
                .redirectErrorStream(true).start();
        try {
            var out = new java.io.BufferedReader(new java.io.InputStreamReader(stuck.getInputStream()));
            assertThat(out.readLine()).isEqualTo("armed");
            vm.console.type("veggur-getpid 4");
            assertThat(out.readLine()).isEqualTo("holding");
            long killed = System.nanoTime();
            stuck.destroyForcibly().waitFor();
            await("VEGGUR-GETPID pid=\\d+ calls=4 ");
            assertThat(Duration.ofNanos(System.nanoTime() - killed)).isLessThan(Duration.ofSeconds(10));
        } finally {
            stuck.destroyForcibly();
        }
        assertNoBreakpointLeft(5004);
    }

    @Test
    void floodsAndNonsense_areRefused_andTheGuestKeepsRunning() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            List<Integer> ids = new ArrayList<>();
            for (int i = 0; i < 64; i++) {
                ids.add(session.setBreakpoint(0xffff_ffff_c000_0000L + i * 16L, 0));
            }
            assertRefused(() -> session.setBreakpoint(0xffff_ffff_c000_1000L, 0), ErrorCode.TOO_LARGE);
            assertRefused(() -> session.setBreakpoint(0x0000_8000_0000_0000L, 0), ErrorCode.OUT_OF_RANGE);
            assertRefused(() -> session.clearBreakpoint(999_999), ErrorCode.OUT_OF_RANGE);
            for (int id : ids) {
                session.clearBreakpoint(id);
            }
        }
        try (RawClient raw = RawClient.connect(vm.socket())) {
            assertThat(raw.call(new Request.ResolveEvent(12345, Request.Action.CONTINUE, Map.of())))
                    .isEqualTo(ErrorCode.OUT_OF_RANGE);
            assertThat(raw.call(new Request.ResolveEvent(1, Request.Action.STEP, Map.of(Register.CR3, 0L))))
                    .isEqualTo(ErrorCode.PERMISSION_DENIED);
            assertThat(raw.rawCall(0x0B, HexFormat.of().parseHex("0000000000000001" + "0007" + "00000000")))
                    .isEqualTo(ErrorCode.MALFORMED);
            assertThat(raw.rawCall(0x09, HexFormat.of().parseHex("ffff"))).isEqualTo(ErrorCode.MALFORMED);
        }
        assertNoBreakpointLeft(5005);
    }

    @Test
    void roles_readMayNotBreak_traceMayNotChangeRegisters() throws Exception {
        SupervisorControl control = new SupervisorControl(vm.manager.directory("bp-it"));
        Path reader = control.open("bp-reader", vm.home.resolve("envs/bp-reader"), "read", true);
        Path tracer = control.open("bp-tracer", vm.home.resolve("envs/bp-tracer"), "trace", true);
        try (IntrospectionSession read = IntrospectionSession.connect(reader.toString())) {
            assertRefused(() -> read.setBreakpoint(getpid, 0), ErrorCode.PERMISSION_DENIED);
        }
        try (IntrospectionSession trace = IntrospectionSession.connect(tracer.toString())) {
            AtomicInteger calls = new AtomicInteger();
            trace.onDebugEvents(event -> {
                calls.incrementAndGet();
                return DebugHandler.Resolution.proceedWith(Map.of(Register.RAX, 7L));
            });
            trace.setBreakpoint(getpid, 0);
            vm.console.type("veggur-getpid 6");
            Matcher done = await("VEGGUR-GETPID pid=(\\d+) calls=6 ");
            assertThat(done.group(1)).as("the trace role's register change was refused").isNotEqualTo("7");
            assertThat(calls.get()).isEqualTo(6);
        } finally {
            control.close("bp-reader");
            control.close("bp-tracer");
        }
    }

    // ---- helpers

    private static Matcher await(String regex) throws Exception {
        return vm.console.awaitLine(Pattern.compile(regex), WAIT);
    }

    /** The guest's own clock: 5000 getpid calls take milliseconds without a breakpoint, seconds with one. */
    private static void assertNoBreakpointLeft(int tag) throws Exception {
        vm.console.type("veggur-getpid " + tag);
        long nanos = Long.parseLong(await("VEGGUR-GETPID pid=\\d+ calls=" + tag + " ns=(\\d+)").group(1));
        assertThat(Duration.ofNanos(nanos)).as("%d getpid calls", tag).isLessThan(Duration.ofMillis(500));
    }

    private interface Call {
        void run() throws Exception;
    }

    private static void assertRefused(Call call, ErrorCode code) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(VmiException.class, e -> assertThat(e.code()).isEqualTo(code));
    }
}
