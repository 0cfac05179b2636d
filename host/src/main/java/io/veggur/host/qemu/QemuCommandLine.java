package io.veggur.host.qemu;

import io.veggur.host.vm.VmConfig;
import io.veggur.host.vm.VmDirectory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds the QEMU invocation for a VM. Invariants: guest RAM is a shared file so the host can map it; the gdbstub,
 * QMP and serial console listen only on UNIX sockets in the VM's private 0700 directory; QEMU starts with its vCPUs
 * stopped ({@code -S}) and the supervisor lets them run once the introspection socket is up; QEMU itself runs under
 * its seccomp sandbox and cannot spawn processes, so even the HMP {@code migrate exec:} path is closed.
 */
public final class QemuCommandLine {
    public static final String BINARY = "qemu-system-x86_64";

    private QemuCommandLine() {}

    public static List<String> build(VmConfig config, VmDirectory directory) {
        List<String> args = new ArrayList<>(List.of(
                BINARY,
                "-name", "veggur-" + config.name(),
                "-machine", "q35,memory-backend=ram0",
                "-accel", config.accel(),
                "-cpu", config.cpuModel(),
                "-m", (config.memoryBytes() >> 20) + "M",
                "-smp", Integer.toString(config.vcpus()),
                "-object", "memory-backend-file,id=ram0,size=" + config.memoryBytes() + ",mem-path="
                        + option(config.ramFile()) + ",share=on",
                "-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
                "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
                "-kernel", config.kernel().toString(),
                "-chardev", "socket,id=console,path=" + option(directory.serialSocket()) + ",server=on,wait=off",
                "-serial", "chardev:console",
                "-chardev", "socket,id=gdb,path=" + option(directory.gdbSocket()) + ",server=on,wait=off",
                "-gdb", "chardev:gdb",
                "-qmp", "unix:" + option(directory.qmpSocket()) + ",server=on,wait=off",
                "-S"));
        if (config.initrd() != null) {
            args.addAll(List.of("-initrd", config.initrd().toString()));
        }
        if (config.append() != null && !config.append().isEmpty()) {
            args.addAll(List.of("-append", config.append()));
        }
        if (config.disk() != null) {
            String format = config.disk().toString().endsWith(".qcow2") ? "qcow2" : "raw";
            args.addAll(List.of("-drive", "file=" + option(config.disk()) + ",if=virtio,format=" + format));
        }
        if (!config.virtioPorts().isEmpty()) {
            args.addAll(List.of("-device", "virtio-serial-pci,id=vports"));
            for (int i = 0; i < config.virtioPorts().size(); i++) {
                args.addAll(List.of(
                        "-chardev", "socket,id=port" + i + ",path=" + option(directory.virtioPortSocket(i)) + ",server=on,wait=off",
                        "-device", "virtserialport,bus=vports.0,chardev=port" + i + ",name=" + config.virtioPorts().get(i)));
            }
        }
        return args;
    }

    /** QEMU option values end at a comma; a literal comma is written twice. */
    private static String option(Path path) {
        return path.toString().replace(",", ",,");
    }
}
