package io.veggur.cli;

import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import io.veggur.host.vm.VmSpec;
import io.veggur.protocol.MemoryRegion;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.memory.PhysicalMemory;
import io.veggur.vmi.os.linux.DiscoveryReport;
import io.veggur.vmi.os.linux.KernelDiscovery;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxTask;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code veggur demo}: boots the built-in test guest and shows what its introspection socket sees, step by step and
 * timed, checking each read against the guest's own ground truth.
 */
@Command(name = "demo", description = "Boot the test guest and show what its introspection socket sees.")
final class DemoCommand implements Callable<Integer> {
    private static final Duration BOOT_TIMEOUT = Duration.ofSeconds(90);

    @Option(names = "--name", defaultValue = "demo", description = "Name of the demo VM.") String name;
    @Option(names = "--keep", description = "Leave the VM running at the end.") boolean keep;

    private long stepStart;

    @Override
    public Integer call() throws Exception {
        VmManager manager = HostVmCommand.manager();
        step("boot the built-in test guest under a detached supervisor");
        VmInfo vm = manager.start(VmSpec.builtinGuest(name));
        done("VM '" + vm.name() + "' " + vm.state() + ", accel " + vm.accel() + ", socket " + vm.socket());
        boolean ok = false;
        try {
            GuestConsole console = new GuestConsole(manager.directory(name));
            step("wait for the guest's init to report ready on its serial console");
            console.awaitLine(Pattern.compile("VEGGUR-READY"), BOOT_TIMEOUT);
            TestGuestMarker marker = TestGuestMarker.await(console, BOOT_TIMEOUT);
            done(String.format("marker page at guest-physical 0x%x (seed 0x%x), counter page at 0x%x",
                    marker.markerAddress(), marker.seed(), marker.counterAddress()));
            try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
                showSocket(session, marker);
            }
            ok = true;
        } finally {
            if (keep) {
                System.out.println("\nVM '" + name + "' left running (--keep); stop it with: veggur vm stop " + name);
            } else {
                step("stop the VM");
                VmInfo stopped = manager.stop(name);
                done("VM '" + name + "' " + stopped.state() + ", socket removed");
            }
        }
        System.out.println(ok ? "\ndemo finished: every read matched the guest's own ground truth" : "");
        return 0;
    }

    private void showSocket(IntrospectionSession session, TestGuestMarker marker) throws Exception {
        step("handshake on the introspection socket");
        done("");
        System.out.printf("    vm id %s, protocol %d, %d vCPU(s), capabilities %s%n", session.vmId(),
                session.protocolVersion(), session.vcpuCount(), session.capabilities());
        for (MemoryRegion region : session.memoryMap().regions()) {
            System.out.printf("    ram 0x%012x-0x%012x%n", region.guestPhysical(), region.end() - 1);
        }

        step("read vCPU 0 registers (through the host-private gdbstub)");
        var registers = session.registers(0);
        done("");
        VmiCommand.printRegisters(registers);

        step("map guest RAM through the granted read-only descriptor and read the marker page");
        PhysicalMemory mapped = session.physicalMemory();
        byte[] viaFd = mapped.read(marker.markerAddress(), TestGuestMarker.PAGE);
        done(mapped.getClass().getSimpleName());
        System.out.println("    " + HexFormat.ofDelimiter(" ").formatHex(viaFd, 0, 32) + " ...");

        step("read the same page through the socket");
        byte[] viaSocket = session.remotePhysicalMemory().read(marker.markerAddress(), TestGuestMarker.PAGE);
        done("");
        check("descriptor and socket reads are equal", Arrays.equals(viaFd, viaSocket));
        check("the page equals the guest's own bytes (from the seed it printed)",
                Arrays.equals(viaFd, marker.expectedMarkerPage()));

        step("pause the VM; the guest's counter must stand still");
        session.pause();
        long first = mapped.readLong(marker.counterAddress());
        Thread.sleep(300);
        long second = mapped.readLong(marker.counterAddress());
        done("counter " + first + " -> " + second);
        check("paused guest did not count", first == second);

        step("resume; the counter moves again");
        session.resume();
        Thread.sleep(300);
        long third = mapped.readLong(marker.counterAddress());
        done("counter " + second + " -> " + third);
        check("running guest counts", third > second);

        step("find the Linux kernel with no profile: kallsyms, paging and BTF from guest memory");
        LinuxKernel kernel = KernelDiscovery.discover(mapped, null);
        done(kernel.release() + ", KASLR slide 0x" + Long.toHexString(kernel.kaslrSlide()) + ", " + kernel.pagingMode());
        for (DiscoveryReport.Step discovery : kernel.report().steps()) {
            System.out.printf("    %-10s %7.1f ms%n", discovery.name(), discovery.nanos() / 1e6);
        }

        step("list the guest's processes from kernel memory");
        List<LinuxTask> processes = kernel.processes().items();
        done(processes.size() + " processes");
        for (LinuxTask task : processes) {
            if (!task.kernelThread()) {
                System.out.printf("    pid %4d  ppid %4d  uid %5d  %s%n", task.pid(), task.ppid(), task.uid(), task.name());
            }
        }
        System.out.println("    (and " + processes.stream().filter(LinuxTask::kernelThread).count() + " kernel threads)");
        check("the guest's own workloads are listed", processes.stream().map(LinuxTask::name).toList()
                .containsAll(List.of("veggur-idle-a", "veggur-idle-b", "veggur-threads", "veggur-marker")));
    }

    private void step(String what) {
        System.out.println("\n== " + what);
        stepStart = System.nanoTime();
    }

    private void done(String result) {
        System.out.printf("   [%d ms] %s%n", (System.nanoTime() - stepStart) / 1_000_000, result);
    }

    private static void check(String what, boolean ok) {
        System.out.println("    " + (ok ? "OK   " : "FAIL ") + what);
        if (!ok) {
            throw new IllegalStateException("demo check failed: " + what);
        }
    }
}
