package io.veggur.host.vm;

import java.nio.file.Path;

/**
 * One VM's files. {@code socket/} holds only the introspection socket, so exactly that directory can be handed to a
 * tenant (bind mount); {@code private/} holds QEMU's gdbstub, QMP and console sockets, which are root-equivalent and
 * never leave the host side. Both are 0700.
 */
public record VmDirectory(Path root) {
    public String name() {
        return root.getFileName().toString();
    }

    public Path config() {
        return root.resolve("config.json");
    }

    public Path state() {
        return root.resolve("state.json");
    }

    public Path supervisorLog() {
        return root.resolve("supervisor.log");
    }

    public Path qemuLog() {
        return root.resolve("qemu.log");
    }

    public Path consoleLog() {
        return root.resolve("console.log");
    }

    public Path socketDirectory() {
        return root.resolve("socket");
    }

    public Path introspectionSocket() {
        return socketDirectory().resolve("vmi.sock");
    }

    public Path privateDirectory() {
        return root.resolve("private");
    }

    public Path qmpSocket() {
        return privateDirectory().resolve("qmp.sock");
    }

    public Path gdbSocket() {
        return privateDirectory().resolve("gdb.sock");
    }

    /** Where the supervisor takes input for the guest's serial console. */
    public Path consoleSocket() {
        return privateDirectory().resolve("console.sock");
    }

    /** The supervisor's control socket: opens and closes role-bound environment sockets. */
    public Path controlSocket() {
        return privateDirectory().resolve("control.sock");
    }

    /** QEMU's end of the serial port; only the supervisor connects to it. */
    public Path serialSocket() {
        return privateDirectory().resolve("serial.sock");
    }

    /** QEMU's end of virtio-serial port {@code index} ({@link VmConfig#virtioPorts}); a short name for sun_path. */
    public Path virtioPortSocket(int index) {
        return privateDirectory().resolve("port" + index + ".sock");
    }
}
