package io.veggur.host.vm;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Everything needed to launch one VM, fixed when it is started. Written by whoever starts the VM, read by its
 * supervisor. Paths are absolute and were checked to exist when the config was made.
 *
 * @param accel   the resolved accelerator, "kvm" or "tcg" (never "auto")
 * @param ramFile the shared RAM backing; on tmpfs so guest RAM never hits the disk
 * @param virtioPorts names of virtio-serial ports (the guest sees them in /sys/class/virtio-ports/&#42;/name); port i
 *                    is QEMU's UNIX socket {@link VmDirectory#virtioPortSocket}(i), a server the host side connects to
 */
public record VmConfig(String name, String id, Path kernel, Path initrd, String append, Path disk, long memoryBytes,
                       int vcpus, String cpuModel, String accel, boolean allowWrite, Path ramFile,
                       List<String> virtioPorts) {
    public static final int MAX_VIRTIO_PORTS = 8;
    private static final Pattern PORT_NAME = Pattern.compile("[a-z0-9][a-z0-9.-]{0,62}");

    public VmConfig {
        VmName.check(name);
        virtioPorts = virtioPorts == null ? List.of() : List.copyOf(virtioPorts);   // null: a config from before ports
        if (virtioPorts.size() > MAX_VIRTIO_PORTS || virtioPorts.stream().distinct().count() != virtioPorts.size()
                || !virtioPorts.stream().allMatch(port -> PORT_NAME.matcher(port).matches())) {
            throw new IllegalArgumentException("virtio ports must be at most " + MAX_VIRTIO_PORTS
                    + " distinct names of lower-case letters, digits, dots and dashes, got " + virtioPorts);
        }
        if (!accel.equals("kvm") && !accel.equals("tcg")) {
            throw new IllegalArgumentException("accel must be resolved to kvm or tcg, got " + accel);
        }
    }
}
