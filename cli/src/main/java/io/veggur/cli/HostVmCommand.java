package io.veggur.cli;

import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import io.veggur.host.vm.VmSpec;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code veggur host vm ...}: VM life cycle on this host, directly, without the agent (root on the host; tenants use
 * {@code veggur vm} through the agent).
 */
@Command(name = "vm", description = "Start, stop and inspect VMs on this host directly, without the agent.",
        mixinStandardHelpOptions = true,
        subcommands = {HostVmCommand.Start.class, HostVmCommand.Stop.class, HostVmCommand.ListVms.class, HostVmCommand.Info.class})
final class HostVmCommand {
    static VmManager manager() {
        return new VmManager(VeggurHome.fromEnvironment());
    }

    static void print(VmInfo info) {
        System.out.printf("%-12s %s%n", "name", info.name());
        System.out.printf("%-12s %s%n", "state", info.state());
        System.out.printf("%-12s %s%n", "socket", info.socket());
        System.out.printf("%-12s %s%n", "console", info.console());
        System.out.printf("%-12s %d MiB%n", "memory", info.memory() >> 20);
        System.out.printf("%-12s %d%n", "vcpus", info.vcpus());
        System.out.printf("%-12s %s (cpu %s)%n", "accel", info.accel(), info.cpu());
        if (info.error() != null) {
            System.out.printf("%-12s %s%n", "error", info.error());
        }
    }

    @Command(name = "start", description = "Boot a VM under a detached supervisor. Without --kernel, boots the built-in test guest.")
    static final class Start implements Callable<Integer> {
        @Parameters(paramLabel = "NAME") String name;
        @Option(names = "--kernel", paramLabel = "FILE") Path kernel;
        @Option(names = "--initrd", paramLabel = "FILE") Path initrd;
        @Option(names = "--append", paramLabel = "ARGS", description = "Kernel command line (added to the test guest's).") String append;
        @Option(names = "--disk", paramLabel = "FILE") Path disk;
        @Option(names = "--memory", defaultValue = "256M", paramLabel = "SIZE") String memory;
        @Option(names = "--vcpus", defaultValue = "1") int vcpus;
        @Option(names = "--cpu", paramLabel = "MODEL", description = "QEMU CPU model (default: max under TCG, host under KVM).") String cpu;
        @Option(names = "--accel", defaultValue = "auto", paramLabel = "auto|kvm|tcg") String accel;
        @Option(names = "--allow-write", description = "Let socket holders write guest memory (off by default).") boolean allowWrite;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            VmSpec spec = new VmSpec(name, kernel, initrd, append, disk, Sizes.parseSize(memory), vcpus, cpu, accel, allowWrite);
            VmInfo info = manager().start(spec);
            if (json) {
                System.out.println(Json.write(info));
            } else {
                print(info);
            }
            return 0;
        }
    }

    @Command(name = "stop", description = "Stop a VM and remove its introspection socket.")
    static final class Stop implements Callable<Integer> {
        @Parameters(paramLabel = "NAME") String name;

        @Override
        public Integer call() throws Exception {
            VmInfo info = manager().stop(name);
            System.out.println(info.name() + " " + info.state());
            return 0;
        }
    }

    @Command(name = "list", description = "List VMs.")
    static final class ListVms implements Callable<Integer> {
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            List<VmInfo> vms = manager().list();
            if (json) {
                System.out.println(Json.write(vms));
                return 0;
            }
            System.out.printf("%-20s %-9s %6s %5s %5s%n", "NAME", "STATE", "MEMORY", "VCPUS", "ACCEL");
            for (VmInfo vm : vms) {
                System.out.printf("%-20s %-9s %5dM %5d %5s%n", vm.name(), vm.state(), vm.memory() >> 20, vm.vcpus(), vm.accel());
            }
            return 0;
        }
    }

    @Command(name = "info", description = "Describe a VM.")
    static final class Info implements Callable<Integer> {
        @Parameters(paramLabel = "NAME") String name;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            VmInfo info = manager().info(name);
            if (json) {
                System.out.println(Json.write(info));
            } else {
                print(info);
            }
            return 0;
        }
    }
}
