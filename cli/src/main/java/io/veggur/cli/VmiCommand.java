package io.veggur.cli;

import io.veggur.protocol.Event;
import io.veggur.protocol.MemoryRegion;
import io.veggur.protocol.Register;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.VcpuRegisters;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code veggur vmi ...}: introspection through a VM's socket, as a tenant would do it. */
@Command(name = "vmi", description = "Introspect a VM through its introspection socket.", mixinStandardHelpOptions = true,
        subcommands = {VmiCommand.Info.class, VmiCommand.Regs.class, VmiCommand.Read.class, VmiCommand.Write.class,
                VmiCommand.Pause.class, VmiCommand.Events.class, LinuxCommand.Ps.class, LinuxCommand.Bench.class, BreakCommand.class, TraceCommand.class,
                LinuxCommand.PsTree.class, LinuxCommand.Lsmod.class, LinuxCommand.Kernel.class})
final class VmiCommand {
    @Command(name = "info", description = "Show what the socket announces: VM id, vCPUs, memory map, capabilities.")
    static final class Info implements Callable<Integer> {
        @Mixin Target target;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            try (IntrospectionSession session = target.connect()) {
                Map<String, Object> info = new LinkedHashMap<>();
                info.put("vmId", session.vmId());
                info.put("protocolVersion", session.protocolVersion());
                info.put("vcpus", session.vcpuCount());
                List<Map<String, Object>> regions = new ArrayList<>();
                for (MemoryRegion region : session.memoryMap().regions()) {
                    regions.add(Map.of("start", region.guestPhysical(), "size", region.size()));
                }
                info.put("memoryMap", regions);
                info.put("memoryBytes", session.memoryMap().totalSize());
                info.put("capabilities", session.capabilities().stream().map(c -> c.name().toLowerCase()).toList());
                if (json) {
                    System.out.println(Json.write(info));
                    return 0;
                }
                System.out.printf("vm id            %s%n", session.vmId());
                System.out.printf("protocol         %d%n", session.protocolVersion());
                System.out.printf("vcpus            %d%n", session.vcpuCount());
                for (MemoryRegion region : session.memoryMap().regions()) {
                    System.out.printf("ram              0x%012x-0x%012x (%d MiB)%n", region.guestPhysical(),
                            region.end() - 1, region.size() >> 20);
                }
                System.out.printf("capabilities     %s%n", info.get("capabilities"));
            }
            return 0;
        }
    }

    @Command(name = "regs", description = "Show a vCPU's registers.")
    static final class Regs implements Callable<Integer> {
        @Mixin Target target;
        @Option(names = "--vcpu", defaultValue = "0") int vcpu;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            try (IntrospectionSession session = target.connect()) {
                VcpuRegisters registers = session.registers(vcpu);
                if (json) {
                    Map<String, String> values = new LinkedHashMap<>();
                    for (Register register : Register.values()) {
                        if (registers.values().containsKey(register)) {
                            values.put(register.displayName(), "0x" + Long.toHexString(registers.get(register)));
                        }
                    }
                    System.out.println(Json.write(values));
                } else {
                    printRegisters(registers);
                }
            }
            return 0;
        }
    }

    static void printRegisters(VcpuRegisters registers) {
        int column = 0;
        for (Register register : Register.values()) {
            if (registers.values().containsKey(register)) {
                System.out.printf("%-14s %016x%s", register.displayName(), registers.get(register), ++column % 3 == 0 ? "\n" : "   ");
            }
        }
        if (column % 3 != 0) {
            System.out.println();
        }
    }

    @Command(name = "read", description = "Read guest-physical memory.")
    static final class Read implements Callable<Integer> {
        @Mixin Target target;
        @Option(names = "--physical", required = true, paramLabel = "ADDR") String address;
        @Option(names = "--length", required = true, paramLabel = "N") String length;
        @Option(names = "--out", paramLabel = "FILE", description = "Write the raw bytes to FILE.") Path out;
        @Option(names = "--hex", description = "Print a hex dump (the default on a terminal).") boolean hex;

        @Override
        public Integer call() throws Exception {
            long start = Sizes.parseAddress(address);
            long count = Sizes.parseSize(length);
            if (count > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("--length " + length + " is too large for one read (max 2 GiB)");
            }
            try (Target.Source source = target.open()) {
                byte[] bytes = source.memory().read(start, (int) count);
                if (out != null) {
                    Files.write(out, bytes);
                } else if (hex || System.console() != null && System.console().isTerminal()) {
                    hexDump(start, bytes);
                } else {
                    OutputStream stdout = System.out;
                    stdout.write(bytes);
                    stdout.flush();
                }
            }
            return 0;
        }

        private static void hexDump(long start, byte[] bytes) {
            HexFormat hexFormat = HexFormat.ofDelimiter(" ");
            for (int i = 0; i < bytes.length; i += 16) {
                int end = Math.min(bytes.length, i + 16);
                StringBuilder text = new StringBuilder();
                for (int j = i; j < end; j++) {
                    text.append(bytes[j] >= 0x20 && bytes[j] < 0x7f ? (char) bytes[j] : '.');
                }
                System.out.printf("%012x  %-47s  %s%n", start + i, hexFormat.formatHex(bytes, i, end), text);
            }
        }
    }

    @Command(name = "write", description = "Write bytes to guest-physical memory (needs the write role).")
    static final class Write implements Callable<Integer> {
        @Mixin Target target;
        @Option(names = "--physical", required = true, paramLabel = "ADDR") String address;
        @Option(names = "--hex", required = true, paramLabel = "BYTES", description = "The bytes, e.g. 90c3.") String bytes;

        @Override
        public Integer call() throws Exception {
            byte[] data;
            try {
                data = HexFormat.of().parseHex(bytes);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--hex takes an even number of hex digits, got '" + bytes + "'");
            }
            try (IntrospectionSession session = target.connect()) {
                session.writePhysical(Sizes.parseAddress(address), data);
            }
            System.out.println("wrote " + data.length + " bytes at " + address);
            return 0;
        }
    }

    @Command(name = "pause", description = "Pause the VM for a while, then resume it (needs the trace role). "
            + "The VM resumes even if this command dies.")
    static final class Pause implements Callable<Integer> {
        @Mixin Target target;
        @Option(names = "--for", defaultValue = "1000", paramLabel = "MS", description = "How long, in milliseconds (max 60000).") long millis;

        @Override
        public Integer call() throws Exception {
            if (millis < 0 || millis > 60_000) {
                throw new IllegalArgumentException("--for must be 0..60000 ms");
            }
            try (IntrospectionSession session = target.connect()) {
                session.pause();
                System.out.println("paused");
                Thread.sleep(millis);
                session.resume();
                System.out.println("resumed");
            }
            return 0;
        }
    }

    @Command(name = "events", description = "Print the VM's state changes (paused, running, shut down) until the "
            + "session ends; exits 1 when the server ends it (the VM stopped, or the socket was revoked).")
    static final class Events implements Callable<Integer> {
        @Mixin Target target;

        @Override
        public Integer call() throws Exception {
            try (IntrospectionSession session = target.connect()) {
                session.subscribeVmEvents(event -> {
                    if (event instanceof Event.VmStateChanged changed) {
                        System.out.println("vm " + changed.state().name().toLowerCase(Locale.ROOT)
                                + (changed.reason() == null || changed.reason().isEmpty() ? "" : " (" + changed.reason() + ")"));
                        System.out.flush();
                    }
                });
                System.out.println("subscribed to VM events");
                System.out.flush();
                throw session.awaitEnd();
            }
        }
    }
}
